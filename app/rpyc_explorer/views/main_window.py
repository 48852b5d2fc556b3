"""The main window: machine list, one tab per session, log dock, menus and toolbar.

Every command that talks to a machine or opens a dialog runs as an asyncio task on
the qasync loop. Closing the window closes every session (each within a bounded
wait) before the window goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from PySide6.QtCore import QByteArray, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from rpyc_explorer import icons
from rpyc_explorer.machines.credentials import CredentialStore
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.store import MachineStore, UnknownMachineError
from rpyc_explorer.stall_monitor import StallMonitor
from rpyc_explorer.views import window_settings
from rpyc_explorer.views.about_dialog import AboutDialog
from rpyc_explorer.views.actions import WindowActions
from rpyc_explorer.views.async_dialog import run_dialog
from rpyc_explorer.views.machine_commands import (
    MachineCommands,
    ask_yes_no,
    keyring_notice,
    secret_kind,
)
from rpyc_explorer.views.machine_panel import MachinePanel
from rpyc_explorer.views.session_tabs import (
    CLOSE_TIMEOUT,
    Connector,
    SessionTabs,
    TabFactory,
    TabState,
)
from rpyc_explorer.widgets.log_pane import LogPane

log = logging.getLogger(__name__)

WINDOW_TITLE = "RPyC Explorer"
# The first start's size: this share of the screen, at least MIN_FIRST_SIZE when the
# screen has room for it. A saved geometry replaces it.
SCREEN_SHARE = 0.8
MIN_FIRST_SIZE = QSize(1200, 800)
# The log dock's first height and the machine list's first width, in pixels.
LOG_DOCK_HEIGHT = 140
PANEL_WIDTH = 240


def first_size(available: QRect | None) -> QSize:
    """Return the window size for a first start on a screen with `available` room."""
    if available is None or available.isEmpty():
        return QSize(MIN_FIRST_SIZE)
    width = max(int(available.width() * SCREEN_SHARE), MIN_FIRST_SIZE.width())
    height = max(int(available.height() * SCREEN_SHARE), MIN_FIRST_SIZE.height())
    return QSize(min(width, available.width()), min(height, available.height()))


class MainWindow(QMainWindow):
    """The application window.

    Args:
        store: the machine list.
        connector: connects one machine (see `session_tabs.Connector`).
        tab_factory: builds the tab of a connected session.
        known_hosts: the SSH known-hosts files.
        credentials: keyring access, or None when there is none.
        settings: where geometry, dock state and open tabs are kept.
        close_timeout: seconds each session may take to close when the window closes.
    """

    # Emitted after every session was closed and the window accepted its close event;
    # carries the cleanup problems reported (empty when everything stopped).
    sessions_closed = Signal(list)

    def __init__(
        self,
        store: MachineStore,
        connector: Connector,
        tab_factory: TabFactory,
        known_hosts: KnownHosts,
        credentials: CredentialStore | None,
        settings: Any,
        close_timeout: float = CLOSE_TIMEOUT,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(WINDOW_TITLE)
        self.setObjectName("MainWindow")
        self.store = store
        self.settings = settings
        self.close_timeout = close_timeout
        self.commands = MachineCommands(self, store, credentials, known_hosts)
        self.cleanup_problems: list[str] = []
        # Set by create_window: the SessionConnector, closed with the window.
        self.session_connector: Any = None
        # Set by create_window: the site's policies (None means no restrictions).
        self.policies: Any = None
        # Idle until a test or benchmark starts it; it wakes the loop every 10 ms.
        self.stall_monitor = StallMonitor(parent=self)
        self._tasks: set[asyncio.Task] = set()
        self._closing: asyncio.Task | None = None
        self._closed_cleanly = False

        self.actions = WindowActions.create(self)
        self.panel = MachinePanel(self)
        self.tabs = SessionTabs(connector, tab_factory, self)
        self.tabs.may_close = lambda machine_id: self._may_end_session(
            machine_id, "Disconnect"
        )
        self.log_pane = LogPane(self)
        self._build_layout()
        self._build_menus()
        self._connect_signals()
        self.panel.set_machines(store.machines())
        store.add_listener(self._on_store_changed)
        self.update_actions()
        self._announce_missing_keyring(credentials)

    def _announce_missing_keyring(self, credentials: CredentialStore | None) -> None:
        if credentials is None or not credentials.unavailable_reason:
            return
        notice = keyring_notice(credentials)
        self.log_pane.add_line("", "", notice, logging.WARNING)
        self.statusBar().showMessage(notice, 30_000)

    # -- building ----------------------------------------------------------------------

    def _build_layout(self) -> None:
        self.empty_label = QLabel(
            "<h3>No machine is connected</h3><p>Double-click a machine on the left, "
            "or press <b>Ctrl+N</b> to add one.</p>",
            self,
        )
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.center = QStackedWidget(self)
        self.center.addWidget(self.empty_label)
        self.center.addWidget(self.tabs)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(self.center)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("LogDock")
        self.log_dock.setWidget(self.log_pane)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.statusBar().showMessage("Ready")
        screen = self.screen()
        size = first_size(screen.availableGeometry() if screen is not None else None)
        self.resize(size)
        self.splitter.setSizes([PANEL_WIDTH, size.width() - PANEL_WIDTH])
        self.resizeDocks([self.log_dock], [LOG_DOCK_HEIGHT], Qt.Orientation.Vertical)

    def _build_menus(self) -> None:
        a = self.actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (a.new_machine, a.import_ssh, None, a.export_log, None, a.quit):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        self.machine_menu = bar.addMenu("&Machine")
        self._fill_machine_menu(self.machine_menu)
        view_menu = bar.addMenu("&View")
        for action in (a.refresh, a.focus_path, a.close_tab, None, a.show_log):
            view_menu.addSeparator() if action is None else view_menu.addAction(action)
        view_menu.addAction(self.log_dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a.about)

        self.toolbar = QToolBar("Main toolbar", self)
        self.toolbar.setObjectName("MainToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (
            a.new_machine,
            a.edit_machine,
            a.clone_machine,
            a.delete_machine,
            None,
            a.connect,
            a.disconnect,
            a.reconnect,
            None,
            a.refresh,
            a.show_log,
        ):
            self.toolbar.addSeparator() if action is None else self.toolbar.addAction(
                action
            )
        self.addToolBar(self.toolbar)

    def _fill_machine_menu(self, menu: QMenu) -> None:
        a = self.actions
        for action in (
            a.connect,
            a.disconnect,
            a.reconnect,
            None,
            a.edit_machine,
            a.clone_machine,
            a.delete_machine,
            None,
            a.forget_host_key,
            a.forget_password,
        ):
            menu.addSeparator() if action is None else menu.addAction(action)

    def _connect_signals(self) -> None:
        a = self.actions
        a.new_machine.triggered.connect(lambda: self.spawn(self._add_machine()))
        a.edit_machine.triggered.connect(lambda: self._on_target(self.commands.edit))
        a.clone_machine.triggered.connect(lambda: self._on_selected(self._clone))
        a.delete_machine.triggered.connect(lambda: self._on_selected(self._delete))
        a.import_ssh.triggered.connect(lambda: self.spawn(self.commands.import_ssh()))
        a.forget_host_key.triggered.connect(
            lambda: self._on_selected(self.commands.forget_host_key)
        )
        a.forget_password.triggered.connect(
            lambda: self._on_selected(self.commands.forget_password)
        )
        a.connect.triggered.connect(
            lambda: self.connect_machine(self.panel.current_machine_id())
        )
        a.disconnect.triggered.connect(
            lambda: self._on_target(self._confirm_and_disconnect)
        )
        a.reconnect.triggered.connect(
            lambda: self._on_target(self._confirm_and_reconnect)
        )
        a.refresh.triggered.connect(self.refresh_current)
        a.focus_path.triggered.connect(self.focus_path_bar)
        a.close_tab.triggered.connect(self.close_current_tab)
        a.show_log.triggered.connect(self.show_log)
        a.export_log.triggered.connect(self.log_pane.export)
        self.log_pane.exported.connect(
            lambda path: self.statusBar().showMessage(f"Log exported to {path}", 15_000)
        )
        a.about.triggered.connect(lambda: self.spawn(run_dialog(AboutDialog(self))))
        a.quit.triggered.connect(self.close)

        self.panel.activated_machine.connect(self.connect_machine)
        self.panel.current_machine_changed.connect(lambda _id: self.update_actions())
        self.panel.context_menu_requested.connect(self._show_context_menu)
        self.tabs.state_changed.connect(self._on_state_changed)
        self.tabs.currentChanged.connect(self._on_current_tab_changed)
        self.tabs.show_log_requested.connect(self.show_log)
        self.tabs.forget_secret_requested.connect(self.forget_secret_and_retry)
        self.tabs.retry_requested.connect(self.connect_machine)

    # -- tasks -------------------------------------------------------------------------

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        """Run a coroutine as a task owned by the window; errors are logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("window: a command failed: %s", exc, exc_info=exc)
            self.statusBar().showMessage(f"Command failed: {exc}", 10_000)

    async def wait_idle(self) -> None:
        """Wait until every command task of the window and its tabs finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.tabs.wait_idle()

    def _on_selected(self, command) -> None:
        machine_id = self.panel.current_machine_id()
        if machine_id:
            self.spawn(command(machine_id))

    def target_machine_id(self) -> str:
        """Return the machine that Edit, Disconnect and Reconnect act on.

        That is the current tab's machine while the tab area has the focus, else the
        machine selected in the list (which follows the current tab, see
        `_on_current_tab_changed`).
        """
        focus = self.focusWidget()
        tab_id = self.tabs.current_machine_id()
        if tab_id and focus is not None and (
            focus is self.tabs or self.tabs.isAncestorOf(focus)
        ):
            return tab_id
        return self.panel.current_machine_id()

    def _on_target(self, command) -> None:
        machine_id = self.target_machine_id()
        if machine_id:
            self.spawn(command(machine_id))

    def _on_current_tab_changed(self, _index: int) -> None:
        machine_id = self.tabs.current_machine_id()
        if machine_id:
            self.panel.select_machine(machine_id)
        self.update_actions()

    def console_running(self, machine_id: str) -> bool:
        """Tell whether a machine's console is running code."""
        pane = getattr(self.tabs.view(machine_id), "console_pane", None)
        return bool(getattr(getattr(pane, "console", None), "running", False))

    async def _may_end_session(self, machine_id: str, verb: str) -> bool:
        if not self.console_running(machine_id):
            return True
        name = self.store.get(machine_id).name
        return await ask_yes_no(
            self,
            f"{verb} {name}?",
            f"The console of {name} is running code. {verb} anyway? "
            "The running code is interrupted.",
        )

    async def _confirm_and_disconnect(self, machine_id: str) -> None:
        if await self._may_end_session(machine_id, "Disconnect"):
            await self.disconnect_machine(machine_id)

    async def _confirm_and_reconnect(self, machine_id: str) -> None:
        if await self._may_end_session(machine_id, "Reconnect"):
            await self.reconnect_machine(machine_id)

    # -- machine commands --------------------------------------------------------------

    async def _add_machine(self) -> None:
        machine = await self.commands.add()
        if machine is not None:
            self.panel.select_machine(machine.id)

    async def _clone(self, machine_id: str) -> None:
        copy = await self.commands.clone(machine_id)
        if copy is not None:
            self.panel.select_machine(copy.id)

    async def _delete(self, machine_id: str) -> None:
        if self.tabs.state(machine_id) is not None:
            await self.tabs.close_machine(machine_id, self.close_timeout)
        await self.commands.delete(machine_id)

    def connect_machine(self, machine_id: str, index: int = -1) -> asyncio.Task | None:
        """Open a machine's tab (a new one at `index`), connecting it if needed."""
        if not machine_id:
            return None
        try:
            machine = self.store.get(machine_id)
        except UnknownMachineError:
            log.warning("window: no machine has id %r", machine_id)
            return None
        self.log_pane.register_machine(machine.name, machine.name)
        task = self.tabs.open_machine(machine, index)
        self.update_actions()
        return task

    async def disconnect_machine(self, machine_id: str) -> list[str]:
        """Close a machine's session and tab."""
        problems = await self.tabs.close_machine(machine_id, self.close_timeout)
        self._report_problems(problems)
        return problems

    async def reconnect_machine(self, machine_id: str) -> None:
        """Close a machine's session, then connect it again in the same tab position."""
        ids = self.tabs.machine_ids()
        index = ids.index(machine_id) if machine_id in ids else -1
        await self.disconnect_machine(machine_id)
        task = self.connect_machine(machine_id, index)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def forget_secret_and_retry(self, machine_id: str) -> None:
        """Forget a machine's remembered password or passphrase and connect again."""
        machine = self.store.get(machine_id)
        credentials = self.commands.credentials
        if credentials is not None:
            credentials.forget(machine_id, secret_kind(machine))
        log.info("window: forgot the remembered secret of %s", machine.name)
        self.connect_machine(machine_id)

    # -- view commands -----------------------------------------------------------------

    def refresh_current(self) -> None:
        """Reload the current tab (F5)."""
        view = self.tabs.current_view()
        if view is not None and hasattr(view, "refresh"):
            view.refresh()

    def focus_path_bar(self) -> None:
        """Move the focus to the current tab's path bar (Ctrl+L)."""
        view = self.tabs.current_view()
        if view is not None and hasattr(view, "focus_path_bar"):
            view.focus_path_bar()

    def close_current_tab(self) -> asyncio.Task | None:
        """Close the current tab and its session (Ctrl+W)."""
        machine_id = self.tabs.current_machine_id()
        if not machine_id:
            return None
        return self.spawn(self._confirm_and_disconnect(machine_id))

    def show_log(self, machine_name: str = "") -> None:
        """Show the log dock (Ctrl+Shift+L), optionally filtered to one machine."""
        self.log_dock.show()
        self.log_dock.raise_()
        if isinstance(machine_name, str) and machine_name:
            self.log_pane.show_machine(machine_name)

    def _show_context_menu(self, machine_id: str, position: QPoint) -> None:
        menu = QMenu(self)
        if machine_id:
            self._fill_machine_menu(menu)
            menu.addSeparator()
        menu.addAction(self.actions.new_machine)
        menu.addAction(self.actions.import_ssh)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(position)

    # -- state -------------------------------------------------------------------------

    def _on_store_changed(self) -> None:
        self.panel.set_machines(self.store.machines())
        self.update_actions()

    def _on_state_changed(self, machine_id: str, state: str) -> None:
        self.panel.set_state(machine_id, state)
        self.center.setCurrentWidget(
            self.tabs if self.tabs.count() else self.empty_label
        )
        connected = sum(
            1
            for m in self.tabs.machine_ids()
            if self.tabs.state(m) is TabState.CONNECTED
        )
        self.statusBar().showMessage(f"{connected} machine(s) connected")
        self.update_actions()

    def update_actions(self) -> None:
        """Enable the actions that fit the selection, current tab and policies."""
        a = self.actions
        machine_id = self.target_machine_id()
        machine = None
        if machine_id:
            try:
                machine = self.store.get(machine_id)
            except UnknownMachineError:
                machine = None

        has_tab = machine is not None and self.tabs.state(machine.id) is not None
        a.edit_machine.setEnabled(machine is not None and machine.editable)
        a.delete_machine.setEnabled(machine is not None and machine.editable)

        may_add = self.policies is None or self.policies.allow_user_machines
        a.new_machine.setEnabled(may_add)
        a.import_ssh.setEnabled(may_add)
        a.clone_machine.setEnabled(
            may_add and machine is not None and not machine.is_builtin
        )

        ssh = machine is not None and machine.kind == "ssh"
        a.forget_host_key.setEnabled(ssh)
        credentials = self.commands.credentials
        a.forget_password.setEnabled(
            ssh
            and machine.auth in ("key", "password")
            and credentials is not None
            and credentials.available
        )

        a.connect.setEnabled(machine is not None)
        a.disconnect.setEnabled(has_tab)
        a.reconnect.setEnabled(has_tab)

        has_view = self.tabs.current_view() is not None
        a.refresh.setEnabled(has_view)
        a.focus_path.setEnabled(has_view)
        a.close_tab.setEnabled(self.tabs.count() > 0)

    def refresh_icons(self) -> None:
        """Redraw every icon after the palette changed."""
        icons.clear_cache()
        self.actions.refresh_icons()
        self.panel.refresh_icons()
        self.tabs.refresh_icons()
        self.log_pane.refresh_icons()

    def _report_problems(self, problems: list[str]) -> None:
        for problem in problems:
            log.error("window: cleanup problem: %s", problem)
        if problems:
            self.statusBar().showMessage(f"Cleanup problem: {problems[0]}", 15_000)

    # -- settings ----------------------------------------------------------------------

    def restore_state(self) -> list[str]:
        """Restore geometry, dock and splitter state; return the last open tabs."""
        s = self.settings
        geometry = s.value(window_settings.GEOMETRY)
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = s.value(window_settings.STATE)
        if isinstance(state, QByteArray):
            self.restoreState(state, window_settings.STATE_VERSION)
        splitter = s.value(window_settings.SPLITTER)
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        known = {m.id for m in self.store.machines()}
        return [
            m
            for m in window_settings.read_list(s, window_settings.OPEN_TABS)
            if m in known
        ]

    def save_state(self) -> None:
        """Write geometry, dock and splitter state and the open tabs."""
        s = self.settings
        s.setValue(window_settings.GEOMETRY, self.saveGeometry())
        s.setValue(window_settings.STATE, self.saveState(window_settings.STATE_VERSION))
        s.setValue(window_settings.SPLITTER, self.splitter.saveState())
        s.setValue(window_settings.OPEN_TABS, self.tabs.machine_ids())
        s.sync()

    # -- closing -----------------------------------------------------------------------

    async def close_sessions(self) -> list[str]:
        """Close every session, each within the close timeout; return the problems."""
        problems = await self.tabs.close_all(self.close_timeout)
        if self.session_connector is not None:
            try:
                problems += await asyncio.wait_for(
                    self.session_connector.close_all(), self.close_timeout
                )
            except asyncio.TimeoutError:
                problems.append(
                    "the session controller did not close within "
                    f"{self.close_timeout:.0f} s"
                )
        self._report_problems(problems)
        return problems

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self._closed_cleanly:
            event.accept()
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # No event loop runs, so no session can be open either.
            self.save_state()
            self._closed_cleanly = True
            self.sessions_closed.emit([])
            event.accept()
            return
        # Close the sessions first, then close the window again.
        event.ignore()
        if self._closing is None:
            self.save_state()
            self.statusBar().showMessage("Closing sessions…")
            self.setEnabled(False)
            self._closing = self.spawn(self._close_then_quit())

    async def _close_then_quit(self) -> None:
        try:
            self.cleanup_problems = await self.close_sessions()
        finally:
            self._closed_cleanly = True
            self.sessions_closed.emit(self.cleanup_problems)
            self.close()
