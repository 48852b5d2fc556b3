"""Look of the application: the Fusion style with a light or dark palette.

The palette follows the desktop's colour scheme (``QStyleHints.colorScheme``, Qt 6.5 and
newer) and changes when the desktop switches. ``RPYC_EXPLORER_COLOR_SCHEME=light|dark``
overrides it, for screenshots and for desktops that report no scheme.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

SCHEME_ENV = "RPYC_EXPLORER_COLOR_SCHEME"

_DARK_COLORS = {
    QPalette.ColorRole.Window: "#2b2d30",
    QPalette.ColorRole.WindowText: "#dfe1e5",
    QPalette.ColorRole.Base: "#1e1f22",
    QPalette.ColorRole.AlternateBase: "#26282b",
    QPalette.ColorRole.ToolTipBase: "#3c3f41",
    QPalette.ColorRole.ToolTipText: "#dfe1e5",
    QPalette.ColorRole.PlaceholderText: "#8c8f94",
    QPalette.ColorRole.Text: "#dfe1e5",
    QPalette.ColorRole.Button: "#393b40",
    QPalette.ColorRole.ButtonText: "#dfe1e5",
    QPalette.ColorRole.BrightText: "#ff6b68",
    QPalette.ColorRole.Light: "#4a4d52",
    QPalette.ColorRole.Midlight: "#404348",
    QPalette.ColorRole.Mid: "#33353a",
    QPalette.ColorRole.Dark: "#1b1c1f",
    QPalette.ColorRole.Shadow: "#101113",
    QPalette.ColorRole.Highlight: "#2f65ca",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#589df6",
    QPalette.ColorRole.LinkVisited: "#b48ee8",
}
_DARK_DISABLED_COLORS = {
    QPalette.ColorRole.WindowText: "#6f737a",
    QPalette.ColorRole.Text: "#6f737a",
    QPalette.ColorRole.ButtonText: "#6f737a",
    QPalette.ColorRole.Highlight: "#3d4148",
}


def dark_palette() -> QPalette:
    """Build the dark palette used when the desktop prefers a dark scheme."""
    palette = QPalette()
    for role, color in _DARK_COLORS.items():
        palette.setColor(role, QColor(color))
    for role, color in _DARK_DISABLED_COLORS.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(color))
    return palette


def _scheme_from_env() -> Qt.ColorScheme | None:
    value = os.environ.get(SCHEME_ENV, "").strip().lower()
    if not value:
        return None
    if value == "dark":
        return Qt.ColorScheme.Dark
    if value == "light":
        return Qt.ColorScheme.Light
    log.warning("theme: ignoring %s=%r; expected 'light' or 'dark'", SCHEME_ENV, value)
    return None


class Theme(QObject):
    """Applies the Fusion style and keeps the palette in step with the colour scheme.

    Args:
        app: The running QApplication.
        scheme: A fixed scheme; None follows the environment override, then the desktop.
    """

    # Fires after the palette changed; carries True for dark. Icons are drawn in the
    # palette's text colour, so their owners redraw them on this signal.
    changed = Signal(bool)

    def __init__(self, app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
        super().__init__(app)
        self._app = app
        self._fixed = scheme if scheme is not None else _scheme_from_env()
        self._dark: bool | None = None
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_scheme_changed)

    @property
    def is_dark(self) -> bool:
        """Whether the dark palette is in use."""
        return bool(self._dark)

    def apply(self) -> None:
        """Set the Fusion style and the palette for the current scheme."""
        self._app.setStyle("Fusion")
        self._set_dark(self._wants_dark())

    def set_scheme(self, scheme: Qt.ColorScheme | None) -> None:
        """Fix the scheme (None returns to following the desktop) and apply it."""
        self._fixed = scheme
        self._set_dark(self._wants_dark())

    def _wants_dark(self) -> bool:
        scheme = self._fixed
        if scheme is None:
            hints = QGuiApplication.styleHints()
            scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else None
        return scheme == Qt.ColorScheme.Dark

    def _on_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        if self._fixed is None:
            log.info("theme: desktop colour scheme changed to %s", scheme.name)
            self._set_dark(scheme == Qt.ColorScheme.Dark)

    def _set_dark(self, dark: bool) -> None:
        if dark == self._dark:
            return
        self._dark = dark
        style = self._app.style()
        self._app.setPalette(dark_palette() if dark else style.standardPalette())
        self.changed.emit(dark)
