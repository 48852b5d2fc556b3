#!/usr/bin/env python3
"""Take screenshots of the real application for the documentation.

The script starts the application with a temporary config dir and a few sample
machines, connects "This computer" (a real local deploy), waits for its tab and
saves each named shot as a PNG under docs/images/. By default Qt renders offscreen
and the shots come from QWidget.grab(); --xvfb runs the same under Xvfb with the xcb
platform instead.

Add a shot by writing an `async def shot_NAME(window, out_dir)` and registering it in
SHOTS; `window.tabs.view(LOCAL_ID)` is the connected MachineTab.

    python3 scripts/screenshot.py                      # every shot
    python3 scripts/screenshot.py --shot main-window   # one shot
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "docs" / "images"
WINDOW_SIZE = (1280, 800)
CONNECT_TIMEOUT = 60.0
# Time for the connected tab to load its first pages before the shot.
SETTLE_SECONDS = 1.5

Shot = Callable[[Any, Path], Awaitable[None]]


def save(widget: Any, path: Path) -> None:
    """Grab `widget` and write it as a PNG; raise when Qt cannot write it."""
    pixmap = widget.grab()
    if pixmap.isNull() or not pixmap.save(str(path), "PNG"):
        raise RuntimeError(f"could not save the screenshot {path}")
    print(f"screenshot: wrote {path} ({pixmap.width()}x{pixmap.height()})")


async def shot_main_window(window: Any, out_dir: Path) -> None:
    """Save the whole window with "This computer" connected and the log dock open."""
    save(window, out_dir / "main-window.png")


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise RuntimeError("screenshot: the explorer did not load in time")
        await asyncio.sleep(0.05)


async def _expand(tree: Any, model: Any, index: Any) -> dict[str, Any]:
    """Expand `index`, wait for its first page, return its children by name."""
    tree.expand(index)
    await _until(lambda: model.node(index).total is not None and not model.node(index).loading)
    rows = range(model.rowCount(index))
    return {model.index(row, 0, index).data(): model.index(row, 0, index) for row in rows}


async def shot_modules_pane(window: Any, out_dir: Path) -> None:
    """Save the modules pane with json.dumps selected and its details shown."""
    from rpyc_explorer.machines.record import LOCAL_ID

    tab = window.tabs.view(LOCAL_ID)
    pane = tab.modules_pane
    tab.tabs.setCurrentWidget(pane)
    tab.console_pane.console.set_input("import json")
    await tab.console_pane.execute("import json")
    pane.filter_edit.setText("json")
    pane.filter_edit.editingFinished.emit()
    modules = await _expand(pane.tree, pane.model, pane.model.top_index("modules"))
    members = await _expand(pane.tree, pane.model, modules["json"])
    pane.tree.setCurrentIndex(members["dumps"])
    await _until(lambda: "Source:" in pane.details.toPlainText())
    save(window, out_dir / "modules-pane.png")


async def shot_files_pane(window: Any, out_dir: Path) -> None:
    """Save the files pane on the repository with README.md previewed."""
    from rpyc_explorer.machines.record import LOCAL_ID

    tab = window.tabs.view(LOCAL_ID)
    pane = tab.files_pane
    tab.tabs.setCurrentWidget(pane)
    pane.go_to(str(REPO_ROOT))
    children = await _expand(pane.tree, pane.model, pane.model.index(0, 0))
    pane.tree.setCurrentIndex(children["README.md"])
    await _until(lambda: pane.preview.toPlainText().startswith("#"))
    save(window, out_dir / "files-pane.png")


async def shot_console(window: Any, out_dir: Path) -> None:
    """Save the console after output, a result and a remote traceback."""
    from rpyc_explorer.machines.record import LOCAL_ID

    tab = window.tabs.view(LOCAL_ID)
    tab.splitter.setSizes([120, 600])
    console = tab.console_pane
    for code in (
        "import os, sys\nfor name in ('platform', 'version'):\n"
        "    print(name, getattr(sys, name))",
        "os.getpid()",
        "import warnings; warnings.warn('sent to stderr'); {1: 'one'}[2]",
    ):
        console.console.set_input(code)
        await console.execute(code)
    console.console.set_input("os.path.jo")
    save(window, out_dir / "console.png")


def save_dialog(dialog: Any, path: Path, width: int = 620) -> None:
    """Lay out a dialog at `width` pixels without showing it, then save it."""
    dialog.resize(width, dialog.sizeHint().height())
    dialog.adjustSize()
    save(dialog, path)


async def shot_host_key_dialogs(window: Any, out_dir: Path) -> None:
    """Save the unknown-key and changed-key dialogs with sample fingerprints."""
    from rpyc_explorer.views.host_key_dialog import ChangedHostKeyDialog, HostKeyDialog

    new_key = "SHA256:Vq3Tn6YV0pJXh0pXw6mRJkQm0e1m6yqkC7uQ1bE9e4A"
    old_key = (
        "ssh-ed25519 SHA256:9fN2bq1lZr8X5cGm3e0WcQk1hUu7sJ2yTtY4nV6aPzE "
        "(/home/admin/.ssh/known_hosts)"
    )
    unknown = HostKeyDialog("build-01.lab.example", 22, "ssh-ed25519", new_key, window)
    save_dialog(unknown, out_dir / "host-key-unknown.png")
    changed = ChangedHostKeyDialog(
        "build-01.lab.example", 22, "ssh-ed25519", old_key, new_key, window
    )
    save_dialog(changed, out_dir / "host-key-changed.png", 700)


async def shot_machine_dialog(window: Any, out_dir: Path) -> None:
    """Save the Add machine dialog filled in for an SSH machine with agent login."""
    from rpyc_explorer.views.machine_dialog import MachineDialog

    dialog = MachineDialog(None, window.store.groups(), True, False, window)
    dialog.name_edit.setText("web-01")
    dialog.host_edit.setText("web-01.lab.example")
    dialog.user_edit.setText("admin")
    dialog.group_combo.setCurrentText("Lab")
    save_dialog(dialog, out_dir / "machine-dialog.png", 560)


async def shot_connect_failed(window: Any, out_dir: Path) -> None:
    """Save the connect panel after the engine found no usable Python on the host."""
    from rpyc_explorer.views.connect_progress import PHASES_BY_KIND, ConnectProgress

    from rpyc_engine.deploy.errors import NoPythonError
    from rpyc_engine.deploy.probe import parse_report

    missing = ("python3.14", "python3.13", "python3.12")
    report = [f"rpyc-deploy-probe: {name}=" for name in missing]
    report.append("rpyc-deploy-probe: python3=/usr/bin/python3 (Python 3.6.9)")
    error = NoPythonError("old-box", parse_report(report), None)
    target = "admin@old-box.lab.example:22"
    panel = ConnectProgress("old-box", target, PHASES_BY_KIND["ssh"])
    panel.set_phase("finding-python")
    panel.set_failed("finding-python", error.reason, error.hint)
    panel.resize(760, 420)
    save(panel, out_dir / "connect-failed.png")


SHOTS: dict[str, Shot] = {
    "main-window": shot_main_window,
    "modules-pane": shot_modules_pane,
    "files-pane": shot_files_pane,
    "console": shot_console,
    "host-key-dialogs": shot_host_key_dialogs,
    "machine-dialog": shot_machine_dialog,
    "connect-failed": shot_connect_failed,
}


def add_sample_machines(store: Any) -> None:
    """Fill the temporary store with machines that make the side panel readable."""
    from rpyc_explorer.machines.record import Machine

    store.add(
        Machine.new("build-01", host="build-01.lab.example", user="ci", group="Lab")
    )
    store.add(
        Machine.new("build-02", host="build-02.lab.example", user="ci", group="Lab")
    )
    store.add(
        Machine.new(
            "db-primary",
            host="10.0.4.12",
            user="admin",
            auth="password",
            group="Production",
        )
    )
    store.add(Machine.new("legacy-service", kind="rpyc", host="127.0.0.1", port=18812))
    store.set_managed(
        [Machine.new("bastion", host="bastion.corp.example", group="Production")]
    )


async def take_shots(window: Any, names: list[str], out_dir: Path) -> None:
    """Connect "This computer", wait for its tab, then run each named shot."""
    from rpyc_explorer.machines.record import LOCAL_ID

    try:
        task = window.connect_machine(LOCAL_ID)
        await asyncio.wait_for(asyncio.shield(task), CONNECT_TIMEOUT)
        if window.tabs.session(LOCAL_ID) is None:
            panel = window.tabs.progress_panel(LOCAL_ID)
            raise RuntimeError(
                "connecting 'This computer' failed: "
                + (panel.error_label.text() if panel else "no tab")
            )
        window.panel.select_machine(LOCAL_ID)
        await asyncio.sleep(SETTLE_SECONDS)
        for name in names:
            await SHOTS[name](window, out_dir)
        window.shots_ok = True
    finally:
        window.close()


def run_shots(names: list[str], out_dir: Path, scheme: str | None) -> int:
    """Run the application with temporary settings and take the shots."""
    from rpyc_explorer import app as application
    from rpyc_explorer.machines.credentials import CredentialStore

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rpyc-explorer-shots-") as temp:
        os.environ["RPYC_EXPLORER_CONFIG_DIR"] = str(Path(temp) / "config")
        os.environ["RPYC_EXPLORER_DATA_DIR"] = str(Path(temp) / "data")
        qapp, theme = application.create_qapplication(scheme)
        # The shots never store secrets, so no keyring is needed.
        from keyring.backends.fail import Keyring as NoKeyring

        window = application.create_window(
            credentials=CredentialStore(backend=NoKeyring())
        )
        add_sample_machines(window.store)
        window.resize(*WINDOW_SIZE)
        window.resizeDocks([window.log_dock], [170], window_orientation_vertical())
        window.shots_ok = False
        problems = application.run_window(
            qapp, theme, window, lambda w: take_shots(w, names, out_dir)
        )
    if problems or not window.shots_ok:
        print(f"screenshot: failed (cleanup problems: {problems})", file=sys.stderr)
        return 1
    return 0


def window_orientation_vertical() -> Any:
    from PySide6.QtCore import Qt

    return Qt.Orientation.Vertical


def reexec_under_xvfb(argv: list[str]) -> int:
    """Run this script again inside xvfb-run with the xcb platform."""
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        print(
            "screenshot: xvfb-run not found; install the xvfb package or drop --xvfb",
            file=sys.stderr,
        )
        return 2
    width, height = WINDOW_SIZE
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", RPYC_SCREENSHOT_IN_XVFB="1")
    command = [
        xvfb_run,
        "-a",
        "-s",
        f"-screen 0 {width + 100}x{height + 100}x24",
        sys.executable,
        __file__,
        *[a for a in argv if a != "--xvfb"],
    ]
    return subprocess.run(command, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shot",
        action="append",
        choices=sorted(SHOTS),
        help="take only this shot (repeatable); default: all",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the PNG files (default docs/images)",
    )
    parser.add_argument(
        "--scheme",
        choices=("light", "dark"),
        default="light",
        help="colour scheme of the shots (default light)",
    )
    parser.add_argument(
        "--xvfb",
        action="store_true",
        help="render under Xvfb (xcb) instead of offscreen",
    )
    args = parser.parse_args(argv)
    if args.xvfb and not os.environ.get("RPYC_SCREENSHOT_IN_XVFB"):
        return reexec_under_xvfb(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("LANG", "C.UTF-8")
    return run_shots(args.shot or list(SHOTS), args.out.resolve(), args.scheme)


if __name__ == "__main__":
    sys.exit(main())
