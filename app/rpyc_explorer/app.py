"""Assembles the application: QApplication, theme, logging, stores and main window.

`main.py` parses the command line and calls `run_app` or `run_smoke`. Tests and
scripts/screenshot.py call `create_window` on their own QApplication and loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

APP_NAME = "RPyC Explorer"
# Loggers whose records reach the log pane.
PANE_LOGGERS = ("rpyc_explorer", "rpyc_engine")
SMOKE_TIMEOUT = 120.0


def configure_stderr_logging(level: str) -> None:
    """Print log records at `level` and above to stderr, redacted."""
    from rpyc_explorer.widgets.log_pane import RedactionFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(getattr(logging, level))
    handler.addFilter(RedactionFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.getLogger().addHandler(handler)


def install_pane_handler(window: Any) -> Any:
    """Forward the application's and the engine's log records to the log pane.

    The session layer's records carry the machine name, so this handler already
    shows what the controller's and the sessions' `log` signals emit. Those
    signals stay unconnected here, because connecting them would show each
    line twice.
    """
    from rpyc_explorer.widgets.log_pane import QtLogHandler

    handler = QtLogHandler(logging.DEBUG)
    window.log_pane.attach(handler)
    for name in PANE_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG if name == "rpyc_explorer" else logging.INFO)
    return handler


def remove_pane_handler(handler: Any) -> None:
    """Detach a handler made by `install_pane_handler`."""
    for name in PANE_LOGGERS:
        logging.getLogger(name).removeHandler(handler)


def default_tab_factory(session: Any, parent: Any) -> Any:
    """Build the explorers' MachineTab for a connected session."""
    from rpyc_explorer.views.machine_tab import MachineTab

    return MachineTab(session, parent)


def preload_tab_modules() -> None:
    """Import the machine tab's modules and compile the console's lexer up front.

    Done lazily, this work (module imports and pygments' regular expressions, about
    60-70 ms measured on a loaded 2-core machine) ran on the GUI thread while the first
    session was connecting and stalled the event loop past its 50 ms budget.
    """
    from pygments.lexers import PythonLexer

    from rpyc_explorer.views import machine_tab  # noqa: F401  (import is the work)

    for _token in PythonLexer().get_tokens("import os\nprint(os.getpid())\n"):
        pass


def create_window(
    *,
    store: Any = None,
    credentials: Any = None,
    known_hosts: Any = None,
    settings: Any = None,
    connector: Any = None,
    tab_factory: Any = None,
    close_timeout: float | None = None,
    site: Any = None,
) -> Any:
    """Build the main window with the real stores unless others are passed.

    Needs a running QApplication. The stores use `RPYC_EXPLORER_CONFIG_DIR` and
    `RPYC_EXPLORER_DATA_DIR` when set (tests and the smoke run point them at
    temporary folders). `site` is a `SiteConfig`; by default the site files are
    read. Its machines and locked policies apply to the stores built here.
    """
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.site_config import load_site_config, load_user_settings
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.views import window_settings
    from rpyc_explorer.views.main_window import MainWindow
    from rpyc_explorer.views.session_connector import SessionConnector

    site = site if site is not None else load_site_config()
    user_settings, settings_problems = load_user_settings()
    policies = site.policies.merged_with(user_settings)
    if store is None:
        store = MachineStore(managed=site.machines)
        store.allow_user_machines = policies.allow_user_machines
    if credentials is None:
        credentials = CredentialStore(allow_storing=policies.store_passwords)
    known_hosts = known_hosts if known_hosts is not None else site_known_hosts(policies)
    settings = settings if settings is not None else window_settings.open_settings()
    extra = {} if close_timeout is None else {"close_timeout": close_timeout}
    session_connector = None
    if connector is None:
        if policies.connect_timeout is not None:
            apply_timeouts(policies.connect_timeout)
        session_connector = SessionConnector(credentials, known_hosts)
        connector = with_default_python(
            session_connector.connect, policies.default_python
        )
    if tab_factory is None:
        preload_tab_modules()
    window = MainWindow(
        store,
        connector,
        tab_factory or default_tab_factory,
        known_hosts,
        credentials,
        settings,
        **extra,
    )
    if session_connector is not None:
        session_connector.parent = window
        window.session_connector = session_connector
    window.policies = policies
    window.site_problems = [*site.problems, *settings_problems]
    window.update_actions()
    return window


def site_known_hosts(policies: Any) -> Any:
    """Build the known-hosts files with the site's file honoured read-only."""
    from rpyc_explorer.machines import paths
    from rpyc_explorer.machines.known_hosts import SYSTEM_KNOWN_HOSTS, KnownHosts

    site_file = [policies.known_hosts] if policies.known_hosts else []
    user_file = paths.user_ssh_dir() / "known_hosts"
    return KnownHosts(read_only_files=[user_file, *site_file, SYSTEM_KNOWN_HOSTS])


def with_default_python(connect: Any, default_python: str) -> Any:
    """Wrap a connector so machines without an interpreter use the site's default."""
    if not default_python:
        return connect

    async def connect_with_default(machine: Any, reporter: Any) -> Any:
        if not machine.python:
            machine = machine.replace(python=default_python)
        return await connect(machine, reporter)

    return connect_with_default


def apply_timeouts(seconds: float) -> None:
    """Use `seconds` for ssh's ConnectTimeout and the host-key fetch."""
    import math

    from rpyc_explorer.session import connect_steps, ssh

    # NOTE: the session layer reads these module constants at each connect; they
    # become controller arguments once the session API takes a timeout.
    ssh.CONNECT_TIMEOUT_SECONDS = max(1, math.ceil(seconds))
    connect_steps.HOST_KEY_TIMEOUT = float(seconds)


def create_qapplication(color_scheme: str | None) -> tuple[Any, Any]:
    """Create the QApplication and apply the theme; return both."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from rpyc_explorer.theme import Theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("rpyc-explorer")
    # The window closes its sessions before it goes away; the loop ends after that.
    app.setQuitOnLastWindowClosed(False)
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(
        color_scheme or ""
    )
    theme = Theme(app, scheme)
    theme.apply()
    return app, theme


def run_window(app: Any, theme: Any, window: Any, steps: Any = None) -> list[str]:
    """Show `window` on a qasync loop until it closed every session.

    Args:
        steps: an optional coroutine function `steps(window)` run once the window is
            shown (the smoke run and the screenshot script use it).

    Returns:
        The cleanup problems the window reported.
    """
    import qasync
    from PySide6.QtCore import QTimer

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    finished: asyncio.Future[list[str]] = loop.create_future()

    def on_closed(problems: list[str]) -> None:
        if not finished.done():
            finished.set_result(list(problems))

    window.sessions_closed.connect(on_closed)
    theme.changed.connect(lambda _dark: window.refresh_icons())
    handler = install_pane_handler(window)
    # Python runs signal handlers only between bytecodes; this timer gives it a turn so
    # Ctrl+C in the terminal closes the window cleanly.
    wake = QTimer()
    wake.start(250)
    wake.timeout.connect(lambda: None)
    previous_sigint = signal.signal(signal.SIGINT, lambda *_: window.close())
    try:
        window.show()
        if steps is not None:
            window.spawn(steps(window))
        return loop.run_until_complete(finished)
    finally:
        signal.signal(signal.SIGINT, previous_sigint)
        wake.stop()
        close_loop(loop)
        remove_pane_handler(handler)


# NOTE: a closed qasync 0.28 loop keeps Qt timers registered on its internal QObject
# until each timer fires once more (a cancelled asyncio.sleep(60) leaves one for 60 s).
# If Python then frees that QObject on a worker thread, Qt cannot unregister the
# timers and later fires one on freed memory (a segfault in activateTimers). Closed
# loops are therefore kept alive until the process exits.
_CLOSED_LOOPS: list[asyncio.AbstractEventLoop] = []


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the loop's pending tasks, wait for them, and close the loop."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    asyncio.set_event_loop(None)
    loop.close()
    _CLOSED_LOOPS.append(loop)


def remove_crash_leftovers() -> None:
    """Remove the session folders of earlier runs that ended without cleaning up."""
    from rpyc_explorer.session.askpass import remove_stale_session_dirs

    remove_stale_session_dirs()


def run_app(color_scheme: str | None, log_level: str) -> int:
    """Run the desktop application until its window closes; return the exit status."""
    configure_stderr_logging(log_level)
    remove_crash_leftovers()
    app, theme = create_qapplication(color_scheme)
    window = create_window()
    for problem in [*window.site_problems, *window.store.problems]:
        window.statusBar().showMessage(str(problem), 30_000)
    last_tabs = window.restore_state()

    async def reopen(window: Any) -> None:
        for machine_id in last_tabs:
            window.connect_machine(machine_id)

    problems = run_window(app, theme, window, reopen)
    return 0 if not problems else 1


# -- smoke run ------------------------------------------------------------------------


async def smoke_steps(window: Any, timeout: float = SMOKE_TIMEOUT) -> None:
    """Connect "This computer", list "/", then close the window.

    Raises:
        RuntimeError: a step failed; the message names it.
    """
    from rpyc_explorer.machines.record import LOCAL_ID

    try:
        task = window.connect_machine(LOCAL_ID)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        session = window.tabs.session(LOCAL_ID)
        if session is None:
            panel = window.tabs.progress_panel(LOCAL_ID)
            reason = panel.error_label.text() if panel is not None else "no tab"
            raise RuntimeError(f"smoke: connecting 'This computer' failed: {reason}")
        entries = await asyncio.wait_for(list_root(session), timeout)
        print(f"smoke: connected to this computer; '/' has {len(entries)} entries")
        window.smoke_ok = True
    finally:
        window.close()


async def list_root(session: Any) -> list[str]:
    """List "/" through the session: one call on our explorer service, else netrefs."""
    if getattr(session, "kind", "") == "explorer":
        entries, _total, error = await session.call("list_dir", "/")
        if error:
            raise RuntimeError(f"smoke: listing '/' failed: {error}")
        return [str(entry[0]) for entry in entries]
    return list(await session.run(lambda: list(session.conn.modules.os.listdir("/"))))


def run_smoke(color_scheme: str | None, log_level: str) -> int:
    """Run `--smoke` offscreen with temporary settings; return 0 when it worked."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    configure_stderr_logging(log_level)
    remove_crash_leftovers()
    with tempfile.TemporaryDirectory(prefix="rpyc-explorer-smoke-") as temp:
        os.environ["RPYC_EXPLORER_CONFIG_DIR"] = str(Path(temp) / "config")
        os.environ["RPYC_EXPLORER_DATA_DIR"] = str(Path(temp) / "data")
        app, theme = create_qapplication(color_scheme)
        window = create_window()
        window.smoke_ok = False
        problems = run_window(app, theme, window, smoke_steps)
    if problems:
        print(f"smoke: cleanup problems: {problems}", file=sys.stderr)
        return 1
    if not window.smoke_ok:
        print("smoke: failed; see the messages above", file=sys.stderr)
        return 1
    print("smoke: ok")
    return 0
