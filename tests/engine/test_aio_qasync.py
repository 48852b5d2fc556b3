"""rpyc_engine.aio on qasync's QEventLoop in an offscreen QApplication.

The same scenarios as ``test_aio.py``, run on the loop the desktop application uses, so
Qt timers, signals and the engine's I/O share one thread.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import aio_scenarios  # noqa: E402
import pytest  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402

from rpyc_engine import aio  # noqa: E402

pytestmark = [pytest.mark.timeout(90), pytest.mark.gui]

RUN_TIMEOUT = 60.0


@pytest.fixture
def server():
    with aio_scenarios.running_server() as running:
        yield running


@pytest.fixture
def qloop(qapp):
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
def run(qloop):
    def run_coroutine(coro, timeout=RUN_TIMEOUT):
        return qloop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run_coroutine


def test_loop_is_qasync(qloop, run):
    async def running_loop():
        return asyncio.get_running_loop()

    assert isinstance(run(running_loop()), qasync.QEventLoop)


def test_calls_and_attributes(server, run):
    run(aio_scenarios.calls_and_attributes(server))


def test_callback_while_loop_responsive(server, run):
    run(aio_scenarios.callback_while_loop_responsive(server))


def test_sync_call_on_loop_rejected(server, run):
    run(aio_scenarios.sync_call_on_loop_rejected(server))


def test_timeout_names_call(server, run):
    run(aio_scenarios.timeout_names_call(server))


def test_threads_share_connection(server, run):
    run(aio_scenarios.threads_share_connection(server))


def test_loop_lateness_during_1000_calls(server, run, record_property):
    ticks, worst = run(aio_scenarios.loop_lateness_during_calls(server))
    print(f"qasync loop: {ticks} timer ticks, worst lateness {worst * 1000:.1f} ms")
    record_property("worst_loop_lateness_ms", round(worst * 1000, 2))
    assert ticks >= 2  # the timer kept firing while the calls ran


def test_qt_timer_fires_during_calls(server, run):
    """A QTimer (Qt's own event source, not an asyncio timer) keeps firing too."""
    fired = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: fired.append(1))

    async def scenario():
        conn = await aio_scenarios.connect(server)
        try:
            root = await aio.root(conn)
            add = await aio.getattr(root, "add_slowly")
            timer.start()
            results = await asyncio.gather(*[aio.call(add, n, 1) for n in range(300)])
            timer.stop()
        finally:
            await aio.close(conn)
        return results

    results = run(scenario())
    assert results == [n + 1 for n in range(300)]
    assert len(fired) >= 2
