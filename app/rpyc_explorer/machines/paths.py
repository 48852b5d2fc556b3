"""Where the application keeps its files.

`RPYC_EXPLORER_CONFIG_DIR` and `RPYC_EXPLORER_DATA_DIR` override platformdirs'
per-user directories, so tests and portable setups can point them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "rpyc-explorer"
CONFIG_ENV = "RPYC_EXPLORER_CONFIG_DIR"
DATA_ENV = "RPYC_EXPLORER_DATA_DIR"


def config_dir() -> Path:
    """Return the per-user configuration directory (machines.toml lives here)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """Return the per-user data directory (the app's known_hosts lives here)."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_ssh_dir() -> Path:
    """Return `~/.ssh`; the application reads files there but never writes them."""
    return Path(os.path.expanduser("~")) / ".ssh"
