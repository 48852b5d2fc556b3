"""An editable path bar: type a remote path and press Enter to open it."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLineEdit, QWidget


class PathBar(QLineEdit):
    """Shows the current remote directory; Enter emits `pathEntered`."""

    # The path the user typed, stripped, when Enter is pressed.
    pathEntered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Remote path (Ctrl+L)")
        self.setClearButtonEnabled(True)
        self.returnPressed.connect(self._on_return)

    def set_path(self, path: str) -> None:
        """Show ``path`` without emitting `pathEntered`."""
        self.setText(path)

    def focus(self) -> None:
        """Focus the bar and select its text, ready to type a new path."""
        self.setFocus()
        self.selectAll()

    def _on_return(self) -> None:
        path = self.text().strip()
        if path:
            self.pathEntered.emit(path)
