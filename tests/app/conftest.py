"""Shared Qt fixtures for the application tests.

Qt runs offscreen. `qloop` puts a qasync event loop on pytest-qt's QApplication so
timers, signals and asyncio tasks share one loop; `arun(coro)` runs a coroutine on it
with a timeout so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("LANG", "C.UTF-8")

import pytest  # noqa: E402
import qasync  # noqa: E402

ARUN_TIMEOUT = 20.0


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test QApplication, closed after the test."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


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
