"""Icons of the application, by role.

Glyphs come from the Material Design Icons set through the ``qtawesome`` package (MIT
licensed code; the icon font is under the Apache License 2.0). They are drawn in the
palette's text colour, so call :func:`clear_cache` when the palette changes and fetch
them again. Status lights are plain coloured discs, drawn here.
"""

from __future__ import annotations

import enum
import functools

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap

# Role name -> qtawesome glyph name. Views ask for roles, so swapping a glyph is a
# one-line change here.
GLYPHS: dict[str, str] = {
    "about": "mdi6.information-outline",
    "add": "mdi6.plus",
    "cancel": "mdi6.close-circle-outline",
    "clone": "mdi6.content-copy",
    "close-tab": "mdi6.close",
    "computer": "mdi6.monitor",
    "connect": "mdi6.lan-connect",
    "delete": "mdi6.delete-outline",
    "disconnect": "mdi6.lan-disconnect",
    "edit": "mdi6.pencil-outline",
    "error": "mdi6.alert-circle-outline",
    "export": "mdi6.content-save-outline",
    "forget-key": "mdi6.key-remove",
    "group": "mdi6.folder-outline",
    "import": "mdi6.file-import-outline",
    "key": "mdi6.key-variant",
    "lock": "mdi6.lock-outline",
    "log": "mdi6.text-box-outline",
    "quit": "mdi6.exit-to-app",
    "reconnect": "mdi6.restart",
    "refresh": "mdi6.refresh",
    "server": "mdi6.server",
    "shield-alert": "mdi6.shield-alert-outline",
    "success": "mdi6.check-circle-outline",
    "warning": "mdi6.alert-outline",
}


class ConnectionState(str, enum.Enum):
    """What a machine's status light shows."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERROR = "error"


STATE_COLORS: dict[ConnectionState, str] = {
    ConnectionState.DISCONNECTED: "#8a8f98",
    ConnectionState.CONNECTING: "#e0a100",
    ConnectionState.CONNECTED: "#2ea043",
    ConnectionState.ERROR: "#d73a49",
}


def _text_color() -> str:
    palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.WindowText).name()


def _disabled_color() -> str:
    palette = QGuiApplication.palette()
    group = QPalette.ColorGroup.Disabled
    return palette.color(group, QPalette.ColorRole.WindowText).name()


@functools.lru_cache(maxsize=None)
def _glyph_icon(glyph: str, color: str, disabled: str) -> QIcon:
    import qtawesome

    return qtawesome.icon(glyph, color=color, color_disabled=disabled)


def icon(role: str, color: str | None = None) -> QIcon:
    """Return the icon for a role from :data:`GLYPHS`.

    Args:
        role: a key of :data:`GLYPHS`.
        color: a fixed colour such as "#2ea043"; None uses the palette's text colour.

    Raises:
        KeyError: The role is not in :data:`GLYPHS`.
    """
    try:
        glyph = GLYPHS[role]
    except KeyError:
        raise KeyError(
            f"unknown icon role {role!r}; add it to rpyc_explorer.icons.GLYPHS"
        ) from None
    return _glyph_icon(glyph, color or _text_color(), _disabled_color())


@functools.lru_cache(maxsize=None)
def _disc_icon(color: str) -> QIcon:
    result = QIcon()
    for size in (16, 24, 32, 48):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(color)
        painter.setPen(fill.darker(130))
        painter.setBrush(fill)
        radius = size * 0.3
        center = QPointF(size / 2, size / 2)
        painter.drawEllipse(
            QRectF(center.x() - radius, center.y() - radius, 2 * radius, 2 * radius)
        )
        painter.end()
        result.addPixmap(pixmap)
    return result


def status_icon(state: ConnectionState | str) -> QIcon:
    """Return the status light for a connection state as a coloured disc."""
    return _disc_icon(STATE_COLORS[ConnectionState(state)])


def clear_cache() -> None:
    """Forget drawn icons; call after the palette changed."""
    _glyph_icon.cache_clear()
