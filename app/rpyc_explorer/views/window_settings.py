"""Window settings: geometry, dock and splitter state, and the last open tabs.

They live in `window.ini` in the application's config directory (next to
`machines.toml`), never in the platform's default settings location. Nothing secret
is written here.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from rpyc_explorer.machines import paths

FILE_NAME = "window.ini"
GEOMETRY = "window/geometry"
STATE = "window/state"
SPLITTER = "window/splitter"
OPEN_TABS = "session/open_tabs"
# Bump when the dock or toolbar layout changes, so old saved states are ignored.
STATE_VERSION = 1


def settings_path(config_dir: Path | None = None) -> Path:
    """Return the path of the window settings file."""
    return (config_dir or paths.config_dir()) / FILE_NAME


def open_settings(config_dir: Path | None = None) -> QSettings:
    """Open the window settings file as an INI-format QSettings."""
    path = settings_path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def read_list(settings: QSettings, key: str) -> list[str]:
    """Read a list of strings; INI files return a bare string for one item."""
    value = settings.value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(item) for item in value]
