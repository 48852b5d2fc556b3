"""Theme: Fusion style, light and dark palettes, and icons redrawn on a change."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette
from rpyc_explorer import icons
from rpyc_explorer.theme import SCHEME_ENV, Theme


@pytest.fixture
def make_theme(qapp):
    """Build themes that are deleted after the test, with the light palette back."""
    made: list[Theme] = []

    def make(scheme=None) -> Theme:
        theme = Theme(qapp, scheme)
        made.append(theme)
        return theme

    yield make
    for theme in made:
        theme.set_scheme(Qt.ColorScheme.Light)
        theme.deleteLater()
    qapp.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    icons.clear_cache()


def window_color(qapp) -> str:
    return qapp.palette().color(QPalette.ColorRole.Window).name()


def test_theme_switches_palette(qapp, qtbot, make_theme):
    theme = make_theme(Qt.ColorScheme.Light)
    theme.apply()
    assert qapp.style().name().lower() == "fusion"
    assert not theme.is_dark
    light = window_color(qapp)
    with qtbot.waitSignal(theme.changed, timeout=1000) as blocker:
        theme.set_scheme(Qt.ColorScheme.Dark)
    assert blocker.args == [True]
    assert theme.is_dark
    assert window_color(qapp) != light
    assert qapp.palette().color(QPalette.ColorRole.Base).lightness() < 80
    theme.set_scheme(Qt.ColorScheme.Light)
    assert window_color(qapp) == light


def test_theme_env_override(qapp, monkeypatch, make_theme):
    monkeypatch.setenv(SCHEME_ENV, "dark")
    theme = make_theme()
    theme.apply()
    assert theme.is_dark
    theme.set_scheme(Qt.ColorScheme.Light)
    assert not theme.is_dark


def test_icons_follow_palette(qapp, make_theme):
    theme = make_theme(Qt.ColorScheme.Light)
    theme.apply()
    icons.clear_cache()
    light = icons.icon("add").pixmap(16, 16).toImage()
    theme.set_scheme(Qt.ColorScheme.Dark)
    icons.clear_cache()
    dark = icons.icon("add").pixmap(16, 16).toImage()
    assert light != dark
    theme.set_scheme(Qt.ColorScheme.Light)
    icons.clear_cache()


def test_icons_unknown_role_names_fix():
    with pytest.raises(KeyError, match="GLYPHS"):
        icons.icon("no-such-role")


def test_status_icons_differ_per_state(qapp):
    images = {state: icons.status_icon(state).pixmap(16, 16).toImage()
              for state in icons.ConnectionState}  # fmt: skip
    assert len({image.pixelColor(8, 8).name() for image in images.values()}) == 4


def test_theme_follows_desktop_change(qapp, qtbot, monkeypatch, make_theme):
    monkeypatch.delenv(SCHEME_ENV, raising=False)
    theme = make_theme()
    theme.apply()
    hints = qapp.styleHints()
    # The offscreen platform has no desktop scheme to switch, so the change
    # notification is emitted here the way a desktop switch would emit it.
    with qtbot.waitSignal(theme.changed, timeout=1000) as blocker:
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert blocker.args == [True]
    assert theme.is_dark
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not theme.is_dark


def test_theme_fixed_scheme_ignores_desktop(qapp, make_theme):
    theme = make_theme(Qt.ColorScheme.Light)
    theme.apply()
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert not theme.is_dark
