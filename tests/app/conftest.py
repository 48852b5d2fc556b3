"""Fixtures for the application tests: the real main window on temporary stores.

The qasync loop (`qloop`, `arun`), the temporary app folders (`app_dirs`) and the
in-memory keyring (`memory_keyring`) come from tests/conftest.py.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def real_window(qtbot, app_dirs, memory_keyring):
    """The main window with the real connector, stores in temporary folders, shown."""
    from rpyc_explorer.app import create_window
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.known_hosts import KnownHosts
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.views import window_settings

    window = create_window(
        store=MachineStore(app_dirs["config"]),
        credentials=CredentialStore(backend=memory_keyring),
        known_hosts=KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[]),
        settings=window_settings.open_settings(app_dirs["config"]),
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    # Window shortcuts need the window to be active.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    return window


@pytest.fixture
def parts(app_dirs, memory_keyring):
    """The window's stores in temporary folders, for `create_window(**parts)`."""
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.known_hosts import KnownHosts
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.views import window_settings

    return {
        "store": MachineStore(app_dirs["config"]),
        "credentials": CredentialStore(backend=memory_keyring),
        "known_hosts": KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[]),
        "settings": window_settings.open_settings(app_dirs["config"]),
    }
