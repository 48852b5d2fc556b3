"""Theme: Fusion style, light and dark palettes, and icons redrawn on a change."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from rpyc_explorer import icons
from rpyc_explorer.theme import SCHEME_ENV, Theme


def window_color(qapp) -> str:
    return qapp.palette().color(QPalette.ColorRole.Window).name()


def test_theme_switches_palette(qapp, qtbot):
    theme = Theme(qapp, Qt.ColorScheme.Light)
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


def test_theme_env_override(qapp, monkeypatch):
    monkeypatch.setenv(SCHEME_ENV, "dark")
    theme = Theme(qapp)
    theme.apply()
    assert theme.is_dark
    theme.set_scheme(Qt.ColorScheme.Light)
    assert not theme.is_dark


def test_icons_follow_palette(qapp):
    theme = Theme(qapp, Qt.ColorScheme.Light)
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
    try:
        icons.icon("no-such-role")
    except KeyError as exc:
        assert "GLYPHS" in str(exc)
    else:
        raise AssertionError("an unknown icon role must raise KeyError")


def test_status_icons_differ_per_state(qapp):
    images = {state: icons.status_icon(state).pixmap(16, 16).toImage()
              for state in icons.ConnectionState}  # fmt: skip
    assert len({image.pixelColor(8, 8).name() for image in images.values()}) == 4
