"""Broken and crowded networks against ThreadedServer and ThreadPoolServer."""

from __future__ import annotations

import random
import socket
import struct
import threading

import pytest
from fault_helpers import wait_until

from rpyc_engine import AsyncResultTimeout, Service, connect
from rpyc_engine.protocol import wire
from rpyc_engine.protocol.framing import encode_frame
from rpyc_engine.protocol.messages import encode_request
from rpyc_engine.server import ThreadedServer, ThreadPoolServer

pytestmark = pytest.mark.timeout(120)

IDLE_SOCKETS = 200
CONCURRENT_CLIENTS = 50
CALLS_PER_CLIENT = 1000


class ArithmeticService(Service):
    """Pure functions whose results a test can check."""

    def exposed_add(self, a: int, b: int) -> int:
        return a + b

    def exposed_echo(self, value: object) -> object:
        return value


def _start(server_class: type, **kwargs: object):
    server = server_class(ArithmeticService, port=0, **kwargs)
    server.start_in_thread()
    return server


@pytest.fixture(params=["threaded", "pool"])
def server(request, thread_watch):
    """A ThreadedServer or a ThreadPoolServer serving ArithmeticService."""
    if request.param == "threaded":
        running = _start(ThreadedServer)
    else:
        running = _start(ThreadPoolServer, nbThreads=4)
    yield running
    running.close()


def _client_count(server) -> int:
    with server._lock:
        return len(server._clients)


def test_silent_peer_times_out_first_call(thread_watch):
    """A peer that accepts TCP and never answers: the first call raises in time."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    acceptor.start()
    conn = connect("127.0.0.1", port, config={"sync_request_timeout": 1})
    try:
        with pytest.raises(AsyncResultTimeout) as raised:
            conn.root  # noqa: B018 - the attribute sends GETROOT
    finally:
        conn.close()
        acceptor.join(5)
        for sock in accepted:
            sock.close()
        listener.close()
    message = str(raised.value)
    assert "GETROOT" in message
    assert "timed out after 1 s" in message


def test_half_frame_drops_only_that_connection(server, thread_watch):
    """Half a frame then close: that client is dropped, another keeps being served."""
    good = connect("127.0.0.1", server.port)
    assert good.root.add(1, 2) == 3
    assert wait_until(lambda: _client_count(server) == 1, 10)
    frame = encode_frame(
        encode_request(1, wire.HANDLE_PING, (wire.LABEL_VALUE, ("x" * 500,)))
    )
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    assert wait_until(lambda: _client_count(server) == 2, 10)
    raw.sendall(frame[: len(frame) // 2])
    raw.close()
    assert wait_until(lambda: _client_count(server) == 1, 10)
    assert good.root.add(40, 2) == 42
    assert good.root.echo("still here") == "still here"
    good.close()
    assert wait_until(lambda: _client_count(server) == 0, 10)


def test_header_only_then_close(server, thread_watch):
    """A frame header with no body, then close: the server forgets that client."""
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    raw.sendall(struct.pack("!LB", 1000, 0))
    assert wait_until(lambda: _client_count(server) == 1, 10)
    raw.close()
    assert wait_until(lambda: _client_count(server) == 0, 10)
    with connect("127.0.0.1", server.port) as conn:
        assert conn.root.add(2, 2) == 4


def test_many_idle_connections(server, thread_watch):
    """Two hundred idle sockets: a new client is served, and closing frees them all."""
    idle = [
        socket.create_connection(("127.0.0.1", server.port), timeout=10)
        for _ in range(IDLE_SOCKETS)
    ]
    try:
        assert wait_until(lambda: _client_count(server) == IDLE_SOCKETS, 30)
        conn = connect("127.0.0.1", server.port)
        assert conn.root.add(20, 22) == 42
        conn.close()
    finally:
        for sock in idle:
            sock.close()
    assert wait_until(lambda: _client_count(server) == 0, 30)
    if isinstance(server, ThreadedServer):
        # One serving thread per client: all of them end with their clients.
        assert wait_until(lambda: len(server._threads) <= 1, 30)


def test_fifty_clients_thousand_calls(thread_watch):
    """Fifty clients make a thousand calls each on one ThreadedServer; all are right."""
    server = _start(ThreadedServer)
    errors: list = []
    results: dict = {}

    def client(number: int) -> None:
        rng = random.Random(number)
        wrong = 0
        try:
            with connect("127.0.0.1", server.port) as conn:
                add = conn.root.add
                for _ in range(CALLS_PER_CLIENT):
                    a, b = rng.randrange(10**12), rng.randrange(10**12)
                    if add(a, b) != a + b:
                        wrong += 1
        except Exception as exc:  # recorded so the assert below names it
            errors.append(f"client {number}: {type(exc).__name__}: {exc}")
        results[number] = wrong

    threads = [
        threading.Thread(target=client, args=(n,)) for n in range(CONCURRENT_CLIENTS)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(100)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        server.close()
    assert errors == []
    assert results == {number: 0 for number in range(CONCURRENT_CLIENTS)}
