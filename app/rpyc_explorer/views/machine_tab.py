"""The tab for one connected machine: modules and objects, files, and the console.

The main window creates one `MachineTab` per `RemoteSession`, calls `refresh()` on F5,
`focus_path_bar()` on Ctrl+L, and awaits `shutdown()` before the session closes.

On our ExplorerService (``session.kind == "explorer"``) the panes call its batched
methods. On a classic server (``"classic"``, stock rpyc included) the first call sends
the same helpers with ``execute``, and the panes work the same way. Any other service
offers nothing to browse, so the tab shows a note instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from ..models.classic_calls import ClassicCalls
from ..models.remote_calls import CachedCalls
from .console_pane import ConsolePane
from .files_pane import FilesPane
from .modules_pane import ModulesPane

log = logging.getLogger(__name__)


class MachineTab(QWidget):
    """Explorers for one connected machine."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.modules_pane: ModulesPane | None = None
        self.files_pane: FilesPane | None = None
        self.console_pane: ConsolePane | None = None
        self._start_task: asyncio.Task | None = None
        self.calls: CachedCalls | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        kind = getattr(session, "kind", "explorer")
        if kind not in ("explorer", "classic"):
            note = QLabel(
                f"{session.machine.name} runs an RPyC service that is neither the "
                "explorer service nor a classic server, so its modules, files and "
                "console cannot be browsed here. Connect with deployment, or to a "
                "classic server, to get the explorers.",
                self,
            )
            note.setWordWrap(True)
            note.setAlignment(Qt.AlignCenter)
            layout.addWidget(note)
            return
        # One lookup per remote method, then one round trip per page or poll.
        self.calls = (
            CachedCalls(session) if kind == "explorer" else ClassicCalls(session)
        )
        self.modules_pane = ModulesPane(self.calls, self)
        self.files_pane = FilesPane(self.calls, self)
        self.console_pane = ConsolePane(self.calls, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.modules_pane, "Modules && objects")
        self.tabs.addTab(self.files_pane, "Files")
        self.splitter = QSplitter(Qt.Vertical, self)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.console_pane)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout.addWidget(self.splitter)
        self.modules_pane.sentToConsole.connect(self._on_sent_to_console)
        self.console_pane.runFinished.connect(self._on_run_finished)
        self._start_task = asyncio.ensure_future(self.files_pane.start())

    def refresh(self) -> None:
        """Reload what the visible explorer pane shows."""
        if self.files_pane is None or self.modules_pane is None:
            return
        if self.tabs.currentWidget() is self.files_pane:
            self.files_pane.refresh()
        else:
            self.modules_pane.refresh()

    def focus_path_bar(self) -> None:
        """Show the files pane and move the keyboard focus to its path bar."""
        if self.files_pane is None:
            return
        self.tabs.setCurrentWidget(self.files_pane)
        self.files_pane.focus_path_bar()

    def _on_sent_to_console(self, name: str, dotted: str) -> None:
        if self.console_pane is not None:
            self.console_pane.note(f"# {dotted} is now {name}")
        self._reload_console_namespace()

    def _on_run_finished(self, _result: str, _traceback: str) -> None:
        self._reload_console_namespace()

    def _reload_console_namespace(self) -> None:
        # New names appear in the console branch if it is open.
        if self.modules_pane is None:
            return
        index = self.modules_pane.model.top_index("console")
        if self.modules_pane.tree.isExpanded(index):
            self.modules_pane.model.reload(index)

    async def shutdown(self) -> None:
        """Stop console runs and transfers and release cached remote objects."""
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
            await asyncio.gather(self._start_task, return_exceptions=True)
        for pane in (self.console_pane, self.files_pane, self.modules_pane):
            if pane is None:
                continue
            try:
                await pane.shutdown()
            except Exception as exc:  # one pane failing must not keep the others alive
                log.warning(
                    "%s: shutting down %s failed: %s",
                    self.session.machine.name,
                    type(pane).__name__,
                    exc,
                )
        if self.calls is not None:
            self.calls.release()
