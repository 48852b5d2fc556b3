"""Fixtures for engine tests: a small threaded TCP server on loopback and clients for it."""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable, List, Optional

import pytest

from rpyc_engine import Connection, connect
from rpyc_engine.factory import connect_socket


class LoopbackServer:
    """Accepts TCP connections on 127.0.0.1 and serves each on its own thread.

    Kept here (instead of ``rpyc_engine.server``) so that these tests exercise only the
    connection and driver.
    """

    def __init__(self, service_factory: Callable[[], Any], config: Any = None) -> None:
        self.service_factory = service_factory
        self.config = config
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections: List[Connection] = []
        self.connected = threading.Condition()
        self.threads: List[threading.Thread] = []
        self.errors: List[BaseException] = []
        self._accepting = True
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        while self._accepting:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            conn = connect_socket(sock, self.service_factory(), self.config)
        except BaseException as exc:  # recorded so a test can fail on it
            self.errors.append(exc)
            sock.close()
            return
        with self.connected:
            self.connections.append(conn)
            self.connected.notify_all()
        try:
            conn.serve_all()
        except BaseException as exc:
            self.errors.append(exc)

    def wait_connections(self, count: int, timeout: float = 10.0) -> List[Connection]:
        """Return the first ``count`` accepted connections, waiting for them."""
        with self.connected:
            ok = self.connected.wait_for(
                lambda: len(self.connections) >= count, timeout
            )
        assert ok, (
            f"server accepted {len(self.connections)} connections, expected {count}"
        )
        return self.connections[:count]

    def close(self) -> None:
        self._accepting = False
        try:
            # shutdown wakes the thread blocked in accept(); close alone does not.
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for conn in list(self.connections):
            conn.close()
        for thread in self.threads:
            thread.join(10)
        self._accept_thread.join(10)
        alive = [thread for thread in self.threads if thread.is_alive()]
        assert not alive, f"{len(alive)} serving threads did not end"


@pytest.fixture
def make_server():
    """Factory: ``make_server(service_factory, config=None)`` -> a started LoopbackServer."""
    servers: List[LoopbackServer] = []

    def factory(
        service_factory: Callable[[], Any], config: Any = None
    ) -> LoopbackServer:
        server = LoopbackServer(service_factory, config)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()


@pytest.fixture
def make_client():
    """Factory: ``make_client(port, service=VoidService, config=None)`` -> Connection."""
    clients: List[Connection] = []

    def factory(
        port: int, service: Any = None, config: Optional[dict] = None
    ) -> Connection:
        kwargs = {} if service is None else {"service": service}
        conn = connect("127.0.0.1", port, config=config, **kwargs)
        clients.append(conn)
        return conn

    yield factory
    for conn in clients:
        conn.close()
