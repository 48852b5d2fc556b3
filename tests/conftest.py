"""Fixtures for the whole suite.

Qt runs offscreen. `qloop` puts a qasync event loop on pytest-qt's QApplication so
timers, signals and asyncio tasks share one loop; `arun(coro)` runs a coroutine on it
with a timeout so a hang fails the test instead of stalling the suite. `sshd_server`
is the throwaway sshd of tests/sshd.py (started only for the tests that request it).

`main_thread_gc` collects garbage on the main thread after every test. Qt objects of a
test (widgets, models, qasync's internals) sit in reference cycles; when the cyclic
collector frees them later from another thread (deploy, heartbeat or session worker
threads), a QObject with a running timer dies outside its thread, its timer stays
registered, and the next ``processEvents()`` crashes in
``QTimerInfoList::activateTimers``. Without this fixture the full suite segfaulted in
an engine test that ran after the Qt tests.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("LANG", "C.UTF-8")

import keyring.backend  # noqa: E402
import keyring.errors  # noqa: E402
import pytest  # noqa: E402
from sshd import sshd_server  # noqa: E402, F401  (session-scoped fixture)


@pytest.fixture(autouse=True)
def main_thread_gc() -> Iterator[None]:
    """Collect garbage on the main thread once the test and its fixtures are done."""
    yield
    gc.collect()


ARUN_TIMEOUT = 20.0


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test QApplication, closed after the test."""
    # Closing a test's last window must not stop the loop, as in the application.
    qapp.setQuitOnLastWindowClosed(False)
    import qasync
    from rpyc_explorer.app import close_loop

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
