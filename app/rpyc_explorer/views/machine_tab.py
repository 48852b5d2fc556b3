"""The tab for one connected machine: modules and objects, files, and the console.

The main window creates one `MachineTab` per `RemoteSession`, calls `refresh()` on F5,
`focus_path_bar()` on Ctrl+L, and awaits `shutdown()` before the session closes.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

log = logging.getLogger(__name__)


class MachineTab(QWidget):
    """Explorers for one connected machine.

    NOTE: this first version is a placeholder with the final interface; the panes land
    in later commits.
    """

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Connected to {session.machine.name}", self))

    def refresh(self) -> None:
        """Reload what the visible pane shows."""

    def focus_path_bar(self) -> None:
        """Move the keyboard focus to the files pane's path bar."""

    async def shutdown(self) -> None:
        """Stop console runs and transfers and release cached remote objects."""
