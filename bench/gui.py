"""The real main window (offscreen): connect, deploy and show a 10 000-entry directory.

For "This computer" (a local deploy) and for a machine on the loopback sshd (key
login, host key trusted in advance), the window connects through its own machine
commands while the window's stall monitor (a 10 ms Qt timer) records the worst
event-loop lateness. Then the files pane opens the 10 000-entry directory; the time to
the first screen runs until its first page is in the model, and the frames the session
writes meanwhile count the round trips. Stock rpyc has no application, so its column
stays empty.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Dict, List

from bench.common import Context, Figure, FrameCounter, Side, describe_error, measure

FAMILY = "gui"
CONNECT_TIMEOUT = 90.0
SCREEN_TIMEOUT = 30.0
SETTLE_WATCH = 2.0  # seconds to watch the pane after its first screen
NO_APP = "n/a: no application"


class _MemoryKeyring:
    """A keyring backend that keeps nothing on disk; key logins store no secret."""

    def __new__(cls) -> Any:
        import keyring.backend

        class MemoryKeyring(keyring.backend.KeyringBackend):
            priority = 1

            def __init__(self) -> None:
                super().__init__()
                self.entries: Dict[tuple, str] = {}

            def get_password(self, service: str, username: str) -> Any:
                return self.entries.get((service, username))

            def set_password(self, service: str, username: str, password: str) -> None:
                self.entries[(service, username)] = password

            def delete_password(self, service: str, username: str) -> None:
                self.entries.pop((service, username), None)

        return MemoryKeyring()


def make_window(workdir: Path) -> Any:
    from rpyc_explorer.app import create_window
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.known_hosts import KnownHosts
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.views import window_settings

    config, data = workdir / "config", workdir / "data"
    config.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    os.environ["RPYC_EXPLORER_CONFIG_DIR"] = str(config)
    os.environ["RPYC_EXPLORER_DATA_DIR"] = str(data)
    window = create_window(
        store=MachineStore(config),
        credentials=CredentialStore(backend=_MemoryKeyring()),
        known_hosts=KnownHosts(data / "known_hosts", read_only_files=[]),
        settings=window_settings.open_settings(config),
    )
    window.resize(1200, 800)
    window.show()
    return window


def ssh_machine_id(window: Any, server: Any, workdir: Path) -> str:
    from rpyc_explorer.machines.record import Machine

    # Trust the sshd's host key in advance, as a user who accepted it once would have.
    known_hosts = workdir / "data" / "known_hosts"
    known_hosts.write_text(Path(server.known_hosts).read_text())
    machine = window.store.add(
        Machine.new(
            "loopback sshd",
            host=server.host,
            port=server.port,
            user=server.user,
            auth="key",
            key_path=server.key_path,
        )
    )
    return machine.id


async def until(predicate: Any, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the window did not get there within {timeout} s")
        await asyncio.sleep(0.005)


def first_page_loaded(model: Any) -> bool:
    """True once the first top-level directory shows its first page (or is empty)."""
    top = model.index(0, 0)
    if not top.isValid():
        return False
    node = model.node(top)
    return node.total is not None and (node.total == 0 or node.loaded_items() > 0)


async def connect_and_list(window: Any, machine_id: str, tree: str) -> Dict[str, float]:
    """Connect ``machine_id``, open ``tree`` in its files pane; return the figures."""
    monitor = window.stall_monitor
    result: Dict[str, float] = {}
    monitor.reset()
    monitor.start()
    started = time.perf_counter()
    task = window.connect_machine(machine_id)
    await asyncio.wait_for(task, CONNECT_TIMEOUT)
    result["connect"] = time.perf_counter() - started
    session = window.tabs.session(machine_id)
    if session is None:
        raise RuntimeError(f"connecting machine {machine_id!r} failed: no session")
    tab = window.tabs.view(machine_id)
    pane = tab.files_pane
    tab.tabs.setCurrentWidget(pane)
    await until(lambda: first_page_loaded(pane.model), SCREEN_TIMEOUT)  # home shown
    await asyncio.sleep(0.05)
    result["connect-stall"] = monitor.worst_ms
    counter = FrameCounter(session.conn)
    monitor.reset()
    pages_before = pane.model.pages_requested
    started = time.perf_counter()
    pane.go_to(tree)
    await until(
        lambda: pane.model.root_paths() == [tree] and first_page_loaded(pane.model),
        SCREEN_TIMEOUT,
    )
    result["screen"] = time.perf_counter() - started
    result["screen-frames"] = float(counter.take())
    result["screen-stall"] = monitor.worst_ms
    # Without scrolling, one screen needs one page; watch what the pane loads anyway.
    monitor.reset()
    await asyncio.sleep(SETTLE_WATCH)
    result["idle-pages"] = float(pane.model.pages_requested - pages_before)
    result["idle-stall"] = monitor.worst_ms
    monitor.stop()
    await window.disconnect_machine(machine_id)
    return result


def run_window(ctx: Context) -> Dict[str, Any]:
    """Run both scenarios on a qasync loop; return ``{target: samples or error}``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication
    from rpyc_explorer.app import close_loop
    from rpyc_explorer.machines.record import LOCAL_ID

    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    tree = str(ctx.tree())
    results: Dict[str, Any] = {}
    window = make_window(ctx.workdir / "gui")
    try:
        targets = {"local": lambda: LOCAL_ID}
        targets["ssh"] = lambda: ssh_machine_id(window, ctx.sshd(), ctx.workdir / "gui")
        for name, machine_id in targets.items():
            try:
                identifier = machine_id()
                runs = [
                    loop.run_until_complete(connect_and_list(window, identifier, tree))
                    for _ in range(ctx.settings.slow_repeat)
                ]
                results[name] = {key: [run[key] for run in runs] for key in runs[0]}
            except Exception as exc:
                results[name] = describe_error(exc)
        window.close()
        loop.run_until_complete(window.wait_idle())
    finally:
        close_loop(loop)
    return results


def run(ctx: Context) -> List[Figure]:
    results = run_window(ctx)

    def pick(target: str, key: str) -> Side:
        data = results[target]
        if isinstance(data, str):
            return Side(error=data)
        return Side(samples=data[key])

    rows = [
        (
            "connect",
            "connect + deploy, from the command to the connected tab "
            "(ssh target: within 0.5 s of `ssh host true`)",
            "s",
        ),
        ("connect-stall", "↳ worst event-loop stall meanwhile (target ≤ 50 ms)", "ms"),
        (
            "screen",
            "time to the first screen of the 10 000-entry directory (target ≤ 0.5 s)",
            "s",
        ),
        (
            "screen-frames",
            "↳ frames the session sent meanwhile (target ≤ 3 per page)",
            "frames",
        ),
        ("screen-stall", "↳ worst event-loop stall meanwhile (target ≤ 50 ms)", "ms"),
        (
            "idle-pages",
            f"↳ pages the pane requested within {SETTLE_WATCH:.0f} s of "
            "opening it, without scrolling (one screen needs 1)",
            "pages",
        ),
        ("idle-stall", f"↳ worst event-loop stall in those {SETTLE_WATCH:.0f} s", "ms"),
    ]
    floor = None
    if not isinstance(results["ssh"], str):
        server = ctx.sshd()
        floor = Side(samples=measure(lambda: server.run("true").check_returncode(), 3))
    figures = []
    for target, title in (("local", "This computer"), ("ssh", "loopback sshd")):
        for key, label, unit in rows:
            figures.append(
                Figure(
                    FAMILY,
                    f"{title}: {label}",
                    unit,
                    ours=pick(target, key),
                    stock=Side(text=NO_APP),
                    floor=floor if (target, key) == ("ssh", "connect") else None,
                )
            )
    return figures
