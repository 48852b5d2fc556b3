"""The tab widget with one tab per machine that is connecting, connected or failed.

A tab starts with a `ConnectProgress` panel while its connect task runs, then contains
the machine's `MachineTab`. On failure the panel shows the failed phase and reason.
Connecting runs as an asyncio task through a `Connector`, so it never blocks the GUI
thread. Closing a
tab cancels its connect task or shuts the `MachineTab` down and closes the session.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QLabel, QStackedWidget, QTabWidget, QWidget

from rpyc_explorer import icons
from rpyc_explorer.icons import ConnectionState
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.views.connect_progress import PHASES_BY_KIND, ConnectProgress

log = logging.getLogger(__name__)

# How long one session may take to shut down and close before it is reported stuck.
CLOSE_TIMEOUT = 10.0


class ConnectFailed(Exception):
    """Raised by a connector when a connection fails in a known phase.

    Attributes:
        phase: the phase that failed (a key of PHASE_LABELS), or "".
        hint: what the user can try, or "" for the phase's default hint.
        stored_secret_rejected: the server rejected a password or passphrase
            that came from the keyring, so the tab offers to forget it.
    """

    def __init__(self, message: str, phase: str = "", hint: str = "",
                 stored_secret_rejected: bool = False) -> None:  # fmt: skip
        super().__init__(message)
        self.phase = phase
        self.hint = hint
        self.stored_secret_rejected = stored_secret_rejected


class ConnectReporter(Protocol):
    """Progress callbacks that a connector calls while it connects."""

    def phase(self, name: str, detail: str = "") -> None: ...

    def progress(self, fraction: float | None) -> None: ...


# Connects one machine and returns its RemoteSession; raises ConnectFailed (or any
# exception) on failure and CancelledError when cancelled.
Connector = Callable[[Machine, ConnectReporter], Awaitable[Any]]
# Builds the widget for a connected session (MachineTab in the application).
TabFactory = Callable[[Any, QWidget], QWidget]


class TabState(str, enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"


@dataclass
class _Entry:
    machine: Machine
    page: QStackedWidget
    progress: ConnectProgress | None = None
    view: QWidget | None = None
    session: Any = None
    task: asyncio.Task | None = None
    state: TabState = TabState.CONNECTING
    cleanup_problems: list[str] = field(default_factory=list)


class _Reporter:
    def __init__(self, progress: ConnectProgress) -> None:
        self._progress = progress

    def phase(self, name: str, detail: str = "") -> None:
        self._progress.set_phase(name, detail)

    def progress(self, fraction: float | None) -> None:
        self._progress.set_progress(fraction)


class SessionTabs(QTabWidget):
    """One tab per machine, keyed by machine id.

    Args:
        connector: the coroutine function that connects a machine.
        tab_factory: builds the widget for a connected session.
        parent: the parent widget.
    """

    # A machine's state changed; carries the machine id and a ConnectionState value.
    state_changed = Signal(str, str)
    # The user asked for a machine's log from its tab; carries the machine name.
    show_log_requested = Signal(str)
    # The user asked to forget a machine's remembered secret; carries the machine id.
    forget_secret_requested = Signal(str)
    # The user pressed Retry in a failed tab; carries the machine id. The window
    # connects again with the machine as it is stored now, edits included.
    retry_requested = Signal(str)

    def __init__(
        self,
        connector: Connector,
        tab_factory: TabFactory,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.connector = connector
        self.tab_factory = tab_factory
        self._entries: dict[str, _Entry] = {}
        # Asked before a tab's close button ends its session; None closes at once.
        self.may_close: Callable[[str], Awaitable[bool]] | None = None
        self.setTabsClosable(True)
        self.setMovable(True)
        self.setDocumentMode(True)
        self.tabCloseRequested.connect(lambda index: self._spawn(self.close_tab(index)))
        self._tasks: set[asyncio.Task] = set()

    # -- queries -----------------------------------------------------------------------

    def machine_ids(self) -> list[str]:
        """Return the machine ids of the open tabs, in tab order."""
        ids = []
        for index in range(self.count()):
            machine_id = self._id_at(index)
            if machine_id:
                ids.append(machine_id)
        return ids

    def state(self, machine_id: str) -> TabState | None:
        """Return a machine's tab state, or None when it has no tab."""
        entry = self._entries.get(machine_id)
        return entry.state if entry else None

    def session(self, machine_id: str) -> Any:
        """Return a machine's session, or None when it is not connected."""
        entry = self._entries.get(machine_id)
        return entry.session if entry else None

    def view(self, machine_id: str) -> QWidget | None:
        """Return the widget of a connected machine's tab."""
        entry = self._entries.get(machine_id)
        return entry.view if entry else None

    def progress_panel(self, machine_id: str) -> ConnectProgress | None:
        """Return the connect panel of a machine that is connecting or failed."""
        entry = self._entries.get(machine_id)
        return entry.progress if entry else None

    def current_machine_id(self) -> str:
        """Return the machine id of the current tab, or ""."""
        return self._id_at(self.currentIndex())

    def current_view(self) -> QWidget | None:
        """Return the MachineTab of the current tab when it is connected."""
        return self.view(self.current_machine_id())

    def connect_task(self, machine_id: str) -> asyncio.Task | None:
        """Return the running connect task of a machine, for tests and shutdown."""
        entry = self._entries.get(machine_id)
        return entry.task if entry else None

    def _id_at(self, index: int) -> str:
        page = self.widget(index)
        for machine_id, entry in self._entries.items():
            if entry.page is page:
                return machine_id
        return ""

    def _index_of(self, machine_id: str) -> int:
        entry = self._entries.get(machine_id)
        return self.indexOf(entry.page) if entry else -1

    # -- connecting --------------------------------------------------------------------

    def open_machine(self, machine: Machine, index: int = -1) -> asyncio.Task | None:
        """Show a machine's tab, connecting it when it has none or failed.

        A new tab goes to position `index` (-1 is the end).
        """
        entry = self._entries.get(machine.id)
        if entry is not None and entry.state is not TabState.FAILED:
            self.setCurrentIndex(self._index_of(machine.id))
            return entry.task
        if entry is None:
            page = QStackedWidget(self)
            entry = _Entry(machine, page)
            self._entries[machine.id] = entry
            self.insertTab(index, page, machine.name)
        entry.machine = machine
        self.setCurrentIndex(self._index_of(machine.id))
        return self._start_connect(entry)

    def _start_connect(self, entry: _Entry) -> asyncio.Task:
        machine = entry.machine
        phases = PHASES_BY_KIND.get(machine.kind, PHASES_BY_KIND["ssh"])
        progress = ConnectProgress(machine.name, machine.target, phases, entry.page)
        if entry.progress is not None:
            entry.page.removeWidget(entry.progress)
            entry.progress.deleteLater()
        entry.progress = progress
        entry.page.addWidget(progress)
        entry.page.setCurrentWidget(progress)
        progress.cancel_requested.connect(lambda: self.cancel(machine.id))
        progress.retry_requested.connect(lambda: self.retry_requested.emit(machine.id))
        progress.close_requested.connect(
            lambda: self._spawn(self.close_machine(machine.id))
        )
        progress.forget_secret_requested.connect(
            lambda: self.forget_secret_requested.emit(machine.id)
        )
        progress.show_log_requested.connect(
            lambda: self.show_log_requested.emit(entry.machine.name)
        )
        self._set_state(entry, TabState.CONNECTING)
        entry.task = asyncio.ensure_future(self._connect(entry, _Reporter(progress)))
        return entry.task

    async def _connect(self, entry: _Entry, reporter: _Reporter) -> None:
        machine = entry.machine
        try:
            session = await self.connector(machine, reporter)
        except asyncio.CancelledError:
            raise
        except ConnectFailed as exc:
            self._fail(entry, exc.phase, str(exc), exc.hint)
            if exc.stored_secret_rejected and entry.progress is not None:
                entry.progress.offer_forget_secret()
            return
        except Exception as exc:  # noqa: BLE001 - any failure is shown in the tab
            log.exception(
                "%s: connecting failed", machine.name, extra={"machine": machine.name}
            )
            self._fail(entry, "", f"{type(exc).__name__}: {exc}", "")
            return
        finally:
            entry.task = None
        if machine.id not in self._entries:
            # The tab was closed while the last step finished: close what arrived.
            await _close_session(session, machine)
            return
        self._show_session(entry, session)

    def _show_session(self, entry: _Entry, session: Any) -> None:
        entry.session = session
        view = self.tab_factory(session, entry.page)
        entry.view = view
        entry.page.addWidget(view)
        entry.page.setCurrentWidget(view)
        if entry.progress is not None:
            entry.page.removeWidget(entry.progress)
            entry.progress.deleteLater()
            entry.progress = None
        closed = getattr(session, "closed", None)
        if closed is not None:
            # A bound slot of this widget, not a lambda: the session may emit from a
            # worker thread, and only a receiver on the GUI thread queues the call.
            closed.connect(self._on_session_closed)
        self._set_state(entry, TabState.CONNECTED)

    def _fail(self, entry: _Entry, phase: str, reason: str, hint: str) -> None:
        log.debug(
            "%s: connecting failed in phase %s: %s",
            entry.machine.name,
            phase or "unknown",
            reason,
            extra={"machine": entry.machine.name},
        )
        if entry.progress is not None:
            entry.progress.set_failed(phase, reason, hint)
        self._set_state(entry, TabState.FAILED)

    def cancel(self, machine_id: str) -> None:
        """Cancel a machine's connect task (the tab then closes)."""
        entry = self._entries.get(machine_id)
        if entry is None or entry.task is None:
            return
        if entry.progress is not None:
            entry.progress.set_cancelling()
        self._spawn(self.close_machine(machine_id))

    @Slot(str)
    def _on_session_closed(self, reason: str) -> None:
        session = self.sender()
        entry = next((e for e in self._entries.values() if e.session is session), None)
        if entry is None:
            return
        if reason != "closed by user" and entry.state is TabState.CONNECTED:
            log.warning(
                "%s: session ended: %s",
                entry.machine.name,
                reason,
                extra={"machine": entry.machine.name},
            )
            self._set_state(entry, TabState.FAILED)
            entry.session = None
            label = QLabel(
                f"The session ended: {reason}. Use Reconnect to connect again.",
                entry.page,
            )
            label.setWordWrap(True)
            entry.page.addWidget(label)
            entry.page.setCurrentWidget(label)

    # -- closing -----------------------------------------------------------------------

    async def close_tab(self, index: int) -> None:
        """Close the tab at `index` and its session."""
        machine_id = self._id_at(index)
        if not machine_id:
            return
        if self.may_close is None or await self.may_close(machine_id):
            await self.close_machine(machine_id)

    async def close_machine(
        self, machine_id: str, timeout: float = CLOSE_TIMEOUT
    ) -> list[str]:
        """Cancel or close a machine's session and remove its tab.

        Returns:
            The cleanup problems the session reported (empty when all stopped).
        """
        entry = self._entries.pop(machine_id, None)
        if entry is None:
            return []
        problems: list[str] = []
        task = entry.task
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except asyncio.CancelledError:
                pass
            except asyncio.TimeoutError:
                problems.append(
                    f"cancelling the connection to {entry.machine.name} "
                    f"did not finish within {timeout:.0f} s"
                )
            except Exception as exc:  # noqa: BLE001 - the task's own error is logged
                log.debug("%s: connect task ended with %s", entry.machine.name, exc)
        if entry.view is not None and hasattr(entry.view, "shutdown"):
            try:
                await asyncio.wait_for(entry.view.shutdown(), timeout)
            except Exception as exc:  # noqa: BLE001 - closing goes on regardless
                log.warning(
                    "%s: tab shutdown failed: %s",
                    entry.machine.name,
                    exc,
                    extra={"machine": entry.machine.name},
                )
        if entry.session is not None:
            problems.extend(await _close_session(entry.session, entry.machine, timeout))
        entry.cleanup_problems = problems
        index = self.indexOf(entry.page)
        if index >= 0:
            self.removeTab(index)
        entry.page.deleteLater()
        self.state_changed.emit(machine_id, ConnectionState.DISCONNECTED.value)
        return problems

    async def close_all(self, timeout: float = CLOSE_TIMEOUT) -> list[str]:
        """Close every tab and session at once, each within `timeout` seconds."""
        ids = list(self._entries)
        results = await asyncio.gather(
            *(self.close_machine(machine_id, timeout) for machine_id in ids),
            return_exceptions=True,
        )
        problems: list[str] = []
        for machine_id, result in zip(ids, results):
            if isinstance(result, BaseException):
                problems.append(f"closing {machine_id} failed: {result}")
            else:
                problems.extend(result)
        return problems

    # -- helpers -----------------------------------------------------------------------

    def _set_state(self, entry: _Entry, state: TabState) -> None:
        entry.state = state
        light = {
            TabState.CONNECTING: ConnectionState.CONNECTING,
            TabState.CONNECTED: ConnectionState.CONNECTED,
            TabState.FAILED: ConnectionState.ERROR,
        }[state]
        index = self.indexOf(entry.page)
        if index >= 0:
            self.setTabIcon(index, icons.status_icon(light))
            self.setTabText(index, entry.machine.name)
            self.setTabToolTip(index, f"{entry.machine.name}: {light.value}")
        self.state_changed.emit(entry.machine.id, light.value)

    def refresh_icons(self) -> None:
        """Redraw the tab icons and connect panels (after the palette changed)."""
        for entry in self._entries.values():
            self._set_state(entry, entry.state)
            if entry.progress is not None:
                entry.progress.refresh_icons()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait for close requests started from buttons (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _close_session(
    session: Any, machine: Machine, timeout: float = CLOSE_TIMEOUT
) -> list[str]:
    try:
        result = await asyncio.wait_for(session.close(), timeout)
    except asyncio.TimeoutError:
        problem = (
            f"closing the session to {machine.name} did not finish within "
            f"{timeout:.0f} s"
        )
        log.error("%s: %s", machine.name, problem, extra={"machine": machine.name})
        return [problem]
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        log.error(
            "%s: closing the session failed: %s",
            machine.name,
            exc,
            extra={"machine": machine.name},
        )
        return [f"closing the session to {machine.name} failed: {exc}"]
    return [str(item) for item in result] if isinstance(result, (list, tuple)) else []
