"""Scenarios for rpyc_engine.aio, run on the default asyncio loop and on qasync's loop.

``test_aio.py`` and ``test_aio_qasync.py`` run each coroutine here on their own loop
against a real ``ThreadedServer`` on loopback, so both loops pass the same checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from rpyc_engine import aio
from rpyc_engine.async_result import async_, timed
from rpyc_engine.drivers.asyncio import LOOP_THREAD_MESSAGE
from rpyc_engine.protocol.errors import AsyncResultTimeout
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.base import Service

CALL_TIMEOUT = 20.0  # seconds; a stalled call fails the test instead of hanging it


class AioTestService(Service):
    """Server side of the scenarios: arithmetic, callbacks, slow calls and a counter."""

    count = 0

    def exposed_add(self, a, b):
        return a + b

    def exposed_add_slowly(self, a, b):
        time.sleep(0.001)
        return a + b

    def exposed_call_back(self, func, value):
        return func(value) * 2

    def exposed_slow(self, seconds):
        time.sleep(seconds)
        return seconds

    def exposed_bump(self):
        AioTestService.count += 1
        return AioTestService.count

    def exposed_numbers(self):
        return [1, 2, 3]


@contextlib.contextmanager
def running_server():
    """Run a ThreadedServer of ``AioTestService`` on loopback for the ``with`` block."""
    AioTestService.count = 0
    server = ThreadedServer(AioTestService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.close()


async def connect(server):
    return await aio.connect(
        "127.0.0.1", server.port, config={"sync_request_timeout": 20}
    )


async def calls_and_attributes(server):
    """callattr, getattr then call, async_ and timed results are awaitable."""
    conn = await connect(server)
    try:
        root = await aio.root(conn)
        assert await aio.root(conn) is root
        assert await aio.callattr(root, "add", 6, 7) == 13
        add = await aio.getattr(root, "add")
        assert await aio.call(add, 1, b=2) == 3
        assert await async_(add)(2, 3) == 5
        assert await timed(add, CALL_TIMEOUT)(3, 4) == 7
        with pytest.raises(TypeError, match="unsupported operand"):
            await aio.call(add, 1, "x")
    finally:
        await aio.close(conn)
    assert conn.closed


async def callback_while_loop_responsive(server):
    """The server calls back into the client while the client awaits; the loop runs on.

    The callback blocks until a timer on the loop releases it, so it can only finish if
    it runs off the loop and the loop keeps running meanwhile.
    """
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    released = threading.Event()
    callback_threads = []

    def callback(value):
        callback_threads.append(threading.get_ident())
        assert released.wait(CALL_TIMEOUT)
        return value + 1

    conn = await connect(server)
    try:
        root = await aio.root(conn)
        loop.call_later(0.05, released.set)
        assert await aio.callattr(root, "call_back", callback, 10) == 22
    finally:
        await aio.close(conn)
    assert len(callback_threads) == 1
    assert callback_threads[0] != loop_thread


async def sync_call_on_loop_rejected(server):
    """A synchronous call on the loop thread raises before anything is sent."""
    conn = await connect(server)
    try:
        root = await aio.root(conn)
        bump = await aio.getattr(root, "bump")
        with pytest.raises(RuntimeError) as info:
            bump()
        assert str(info.value) == LOOP_THREAD_MESSAGE
        with pytest.raises(RuntimeError, match="would freeze it"):
            root.add  # noqa: B018 - the GETATTR itself is the synchronous call
        assert await aio.call(bump) == 1  # the rejected call never reached the server
    finally:
        await aio.close(conn)


async def timeout_names_call(server):
    """A per-call expiry raises AsyncResultTimeout naming the call; conn stays open."""
    conn = await connect(server)
    try:
        root = await aio.root(conn)
        slow = await aio.getattr(root, "slow")
        with pytest.raises(AsyncResultTimeout) as info:
            await timed(slow, 0.2)(1.0)
        assert isinstance(info.value, TimeoutError)
        assert "CALL on <netref builtins.method>" in str(info.value)
        assert "timed out after 0.2 s" in str(info.value)
        assert not conn.closed
        assert await aio.callattr(root, "add", 1, 1) == 2
    finally:
        await aio.close(conn)


async def loop_lateness_during_calls(server, calls=1000, interval=0.005):
    """Run ``calls`` remote calls while a timer ticks every ``interval`` seconds.

    Returns:
        ``(ticks, worst_lateness_seconds)`` of the timer while the calls ran.
    """
    loop = asyncio.get_running_loop()
    lateness = []
    running = True

    def tick(expected):
        if not running:
            return
        now = loop.time()
        lateness.append(max(0.0, now - expected))
        loop.call_at(now + interval, tick, now + interval)

    conn = await connect(server)
    try:
        root = await aio.root(conn)
        add = await aio.getattr(root, "add_slowly")
        start = loop.time()
        loop.call_at(start + interval, tick, start + interval)
        results = await asyncio.gather(*[aio.call(add, n, n) for n in range(calls)])
        running = False
        assert results == [2 * n for n in range(calls)]
    finally:
        await aio.close(conn)
    return len(lateness), max(lateness, default=0.0)


async def threads_share_connection(server, threads=8, calls_per_thread=50):
    """Other threads make synchronous calls while the loop awaits calls of its own."""
    conn = await connect(server)
    errors = []
    results = {}

    def work(number):
        try:
            root = conn.root  # a synchronous GETROOT, allowed off the loop
            results[number] = [root.add(number, i) for i in range(calls_per_thread)]
        except Exception as exc:  # collected and asserted on the loop
            errors.append(exc)

    try:
        root = await aio.root(conn)
        workers = [
            threading.Thread(target=work, args=(n,), daemon=True)
            for n in range(threads)
        ]
        for worker in workers:
            worker.start()
        own = await asyncio.gather(
            *[aio.callattr(root, "add", n, 1) for n in range(200)]
        )
        for worker in workers:
            await asyncio.get_running_loop().run_in_executor(None, worker.join, 30)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        await aio.close(conn)
    assert errors == []
    assert own == [n + 1 for n in range(200)]
    for number in range(threads):
        assert results[number] == [number + i for i in range(calls_per_thread)]
