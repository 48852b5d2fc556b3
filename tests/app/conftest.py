"""Shared Qt fixtures for the application tests.

Qt runs offscreen. `qloop` puts a qasync event loop on pytest-qt's QApplication so
timers, signals and asyncio tasks share one loop; `arun(coro)` runs a coroutine on it
with a timeout so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("LANG", "C.UTF-8")

import keyring.backend  # noqa: E402
import keyring.errors  # noqa: E402
import pytest  # noqa: E402
import qasync  # noqa: E402
from rpyc_explorer.app import close_loop  # noqa: E402

# The throwaway sshd (tests/sshd.py) as a session-scoped fixture; it starts only
# for the tests that request `sshd_server`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshd import sshd_server  # noqa: E402, F401

ARUN_TIMEOUT = 20.0


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test QApplication, closed after the test."""
    # Closing a test's last window must not stop the loop, as in the application.
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        close_loop(loop)


@pytest.fixture
def arun(qloop) -> Callable[..., Any]:
    """Run a coroutine on `qloop` until it finishes or `timeout` seconds pass."""

    def run(coro: Coroutine[Any, Any, Any], timeout: float = ARUN_TIMEOUT) -> Any:
        return qloop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run


@pytest.fixture
def app_dirs(tmp_path, monkeypatch) -> dict[str, Any]:
    """Point the application's config and data directories at a temporary folder."""
    config = tmp_path / "config"
    data = tmp_path / "data"
    config.mkdir()
    data.mkdir()
    monkeypatch.setenv("RPYC_EXPLORER_CONFIG_DIR", str(config))
    monkeypatch.setenv("RPYC_EXPLORER_DATA_DIR", str(data))
    return {"config": config, "data": data}


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-memory keyring backend for unit tests.

    The OS keyring (SecretService) is exercised by the credential tests; window and
    dialog tests only need somewhere to put a secret and read it back.
    """

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(f"no entry for {username}")


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    """A fresh in-memory keyring backend."""
    return MemoryKeyring()


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
