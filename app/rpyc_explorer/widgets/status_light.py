"""A small coloured light that shows a machine's connection state."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QLabel, QWidget

from rpyc_explorer.icons import ConnectionState, status_icon

__all__ = ["ConnectionState", "StatusLight"]

_TOOLTIPS = {
    ConnectionState.DISCONNECTED: "Disconnected",
    ConnectionState.CONNECTING: "Connecting…",
    ConnectionState.CONNECTED: "Connected",
    ConnectionState.ERROR: "Connection failed",
}


class StatusLight(QLabel):
    """A label that shows the status disc for one :class:`ConnectionState`."""

    def __init__(self, parent: QWidget | None = None, size: int = 14) -> None:
        super().__init__(parent)
        self._size = size
        self._state = ConnectionState.DISCONNECTED
        self.setFixedSize(QSize(size, size))
        self.set_state(ConnectionState.DISCONNECTED)

    @property
    def state(self) -> ConnectionState:
        """The state shown."""
        return self._state

    def set_state(self, state: ConnectionState | str) -> None:
        """Show a new state; the tooltip says it in words."""
        self._state = ConnectionState(state)
        self.setPixmap(status_icon(self._state).pixmap(self._size, self._size))
        self.setToolTip(_TOOLTIPS[self._state])
        self.setAccessibleName(_TOOLTIPS[self._state])
