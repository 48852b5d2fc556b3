"""Concurrent calls, callbacks and timeouts on the threaded driver, with real sockets.

Rule for a peer that stops replying: a timed-out call raises ``AsyncResultTimeout``
and the connection stays open, because the peer may only be slow (its late reply is
dropped). The connection closes when the stream ends (EOF or a socket error), which the
threaded driver notices at the next read: the next call, or a ``BgServingThread``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from rpyc_engine import BgServingThread, timed
from rpyc_engine.async_result import async_
from rpyc_engine.factory import connect
from rpyc_engine.protocol.errors import AsyncResultTimeout, ConnectionClosed
from rpyc_engine.protocol.wire import HANDLE_CALLATTR
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.base import Service

pytestmark = pytest.mark.timeout(120)

CALL_TIMEOUT = 30.0  # seconds; a stalled call fails instead of hanging the suite
STALL_LIMIT = 10.0  # seconds between a reply's arrival and its waiter waking up


class CallService(Service):
    """Server side: arithmetic, callbacks into the client and a slow call."""

    def exposed_add(self, a, b):
        return a + b

    def exposed_call_back(self, func, value):
        return func(value) * 2

    def exposed_slow(self, seconds, value=None):
        time.sleep(seconds)
        return value


@pytest.fixture
def server():
    server = ThreadedServer(CallService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    yield server
    server.close()


@pytest.fixture
def closing():
    conns = []

    def track(conn):
        conns.append(conn)
        return conn

    yield track
    for conn in conns:
        conn.close()


class StallDetector:
    """Wrapper of a driver's ``wait_for`` that records how late waiters wake up.

    A waiter that misses the wake-up for a reply that has already arrived would sleep
    until its timeout and then return success; only this lag shows it.
    """

    def __init__(self, driver):
        self.worst_lag = 0.0
        self._lock = threading.Lock()
        self._wait_for = driver.wait_for
        driver.wait_for = self.wait_for

    def wait_for(self, result, timeout):
        completed = []
        result.add_callback(lambda _result: completed.append(time.monotonic()))
        done = self._wait_for(result, timeout)
        if completed:
            lag = time.monotonic() - completed[0]
            with self._lock:
                self.worst_lag = max(self.worst_lag, lag)
        return done


def _run_threads(count, target):
    errors = []

    def guarded(number):
        try:
            target(number)
        except Exception as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CALL_TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_16_threads_share_connection(server, closing):
    conn = closing(
        connect("127.0.0.1", server.port, config={"sync_request_timeout": CALL_TIMEOUT})
    )
    detector = StallDetector(conn._driver)
    root = conn.root
    results = {}

    def work(number):
        results[number] = [root.add(number, i) for i in range(100)]

    errors = _run_threads(16, work)
    assert errors == []
    for number in range(16):
        assert results[number] == [number + i for i in range(100)]
    print(f"worst wake-up lag after a reply: {detector.worst_lag * 1000:.1f} ms")
    assert detector.worst_lag < STALL_LIMIT


def test_16_threads_with_callbacks(server, closing):
    """Callbacks from the server run on a thread that waits on this connection."""
    conn = closing(
        connect("127.0.0.1", server.port, config={"sync_request_timeout": CALL_TIMEOUT})
    )
    detector = StallDetector(conn._driver)
    root = conn.root
    results = {}
    callback_threads = set()
    worker_threads = set()

    def callback(value):
        callback_threads.add(threading.get_ident())
        return value + 1

    def work(number):
        worker_threads.add(threading.get_ident())
        results[number] = [
            root.call_back(callback, number * 100 + i) for i in range(20)
        ]

    errors = _run_threads(16, work)
    assert errors == []
    for number in range(16):
        assert results[number] == [(number * 100 + i + 1) * 2 for i in range(20)]
    assert callback_threads
    assert callback_threads <= worker_threads
    assert detector.worst_lag < STALL_LIMIT


def test_callback_during_pending_call(server, closing):
    """The only waiting thread serves the server's callback, even nested twice."""
    conn = closing(connect("127.0.0.1", server.port))
    root = conn.root
    threads = []

    def inner(value):
        threads.append(threading.get_ident())
        return value + 1

    def outer(value):
        threads.append(threading.get_ident())
        return root.call_back(inner, value)  # calls the server again from the callback

    assert root.call_back(outer, 1) == 8  # ((1 + 1) * 2) * 2
    assert threads == [threading.get_ident()] * 2


def test_per_call_timeout_names_call(server, closing):
    conn = closing(connect("127.0.0.1", server.port))
    root = conn.root
    slow = root.slow
    result = timed(slow, 0.3)(1.0, "late")
    with pytest.raises(AsyncResultTimeout) as info:
        result.wait()
    assert isinstance(info.value, TimeoutError)
    assert "CALL on <netref builtins.method>" in str(info.value)
    assert "timed out after 0.3 s" in str(info.value)
    assert not conn.closed
    # The late reply must not be delivered to the next call.
    assert root.add(1, 2) == 3


def test_connection_timeout_names_attribute(server, closing):
    conn = closing(
        connect("127.0.0.1", server.port, config={"sync_request_timeout": 0.3})
    )
    root = conn.root
    with pytest.raises(AsyncResultTimeout) as info:
        conn.sync_request(HANDLE_CALLATTR, root, "slow", (1.0,), ())
    message = str(info.value)
    assert "CALLATTR 'slow' on <netref " in message
    assert "timed out after 0.3 s" in message
    assert not conn.closed
    time.sleep(1.0)  # the server finishes slow(); its reply is dropped
    assert async_(root.add)(2, 2).value == 4


def test_async_result_expiry(server, closing):
    conn = closing(connect("127.0.0.1", server.port))
    result = async_(conn.root.slow)(0.5, "done")
    result.set_expiry(CALL_TIMEOUT)
    assert result.value == "done"
    assert not result.expired
    expiring = async_(conn.root.slow)(1.0)
    expiring.set_expiry(0.1)
    with pytest.raises(AsyncResultTimeout, match="timed out after 0.1 s"):
        expiring.wait()
    assert expiring.expired


@pytest.fixture
def silent_server():
    """A TCP server that accepts one connection and never replies; hang_up() closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    thread.start()

    class Silent:
        port = listener.getsockname()[1]

        @staticmethod
        def hang_up():
            thread.join(10)
            for sock in accepted:
                sock.close()

    yield Silent
    Silent.hang_up()
    listener.close()


def test_silent_peer_times_out_then_eof_closes(silent_server):
    conn = connect(
        "127.0.0.1", silent_server.port, config={"sync_request_timeout": 0.3}
    )
    try:
        with pytest.raises(AsyncResultTimeout, match="GETROOT timed out after 0.3 s"):
            conn.root  # noqa: B018 - GETROOT is the request that gets no reply
        assert not conn.closed
        silent_server.hang_up()
        with pytest.raises(ConnectionClosed):
            conn.root  # noqa: B018
        assert conn.closed
    finally:
        conn.close()


def test_bg_thread_notices_eof(silent_server):
    conn = connect("127.0.0.1", silent_server.port)
    ended = threading.Event()
    serving = BgServingThread(conn, callback=ended.set)
    try:
        silent_server.hang_up()
        assert ended.wait(CALL_TIMEOUT)
        assert conn.closed
    finally:
        serving.stop()
        conn.close()


@pytest.fixture
def server_process():
    argv = [sys.executable, "-m", "rpyc_engine", "serve", "--port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        proc.port = int(proc.stdout.readline())
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


def _wait_until_stopped(pid):
    """Wait until ``pid`` is stopped, because SIGSTOP takes effect asynchronously."""
    deadline = time.monotonic() + CALL_TIMEOUT
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop after SIGSTOP")


def test_stopped_server_times_out_then_dies(server_process):
    conn = connect("127.0.0.1", server_process.port)
    try:
        get_name = conn.root.get_service_name
        assert get_name() == "SERVICE"
        os.kill(server_process.pid, signal.SIGSTOP)
        _wait_until_stopped(server_process.pid)
        with pytest.raises(AsyncResultTimeout, match="timed out after 0.5 s"):
            timed(get_name, 0.5)().wait()
        assert not conn.closed
        os.kill(server_process.pid, signal.SIGCONT)
        assert timed(get_name, CALL_TIMEOUT)().value == "SERVICE"
        server_process.kill()
        server_process.wait(10)
        with pytest.raises(ConnectionClosed):
            timed(get_name, CALL_TIMEOUT)().value  # noqa: B018 - value raises
        assert conn.closed
    finally:
        conn.close()


def test_await_on_threaded_connection(server, closing):
    """Awaiting a result of a threaded connection waits on an executor thread."""
    conn = closing(connect("127.0.0.1", server.port))
    add = conn.root.add

    async def scenario():
        first = await async_(add)(1, 2)
        second = await timed(add, CALL_TIMEOUT)(3, 4)
        with pytest.raises(AsyncResultTimeout, match="timed out after 0.2 s"):
            await timed(conn.root.slow, 0.2)(1.0)
        return first, second

    assert asyncio.run(asyncio.wait_for(scenario(), CALL_TIMEOUT)) == (3, 7)
