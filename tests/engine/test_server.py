"""ThreadedServer and ThreadPoolServer on real loopback and Unix sockets."""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
import threading

import pytest

from rpyc_engine.factory import connect, connect_socket, unix_connect
from rpyc_engine.protocol.errors import AuthenticationError
from rpyc_engine.server import ThreadedServer, ThreadPoolServer
from rpyc_engine.services.base import Service

pytestmark = pytest.mark.timeout(60)


class EchoService(Service):
    """Test service: echo, connection facts, a barrier and a callback."""

    barrier = None

    def on_connect(self, conn):
        self._conn = conn

    def exposed_echo(self, value):
        return value

    def exposed_facts(self):
        config = self._conn._config
        return (config["credentials"], config["endpoints"], config["connid"])

    def exposed_meet(self, value):
        EchoService.barrier.wait()
        return value

    def exposed_call_back(self, func, value):
        return func(value)


@pytest.fixture
def make_server():
    servers = []

    def make(cls=ThreadedServer, **kwargs):
        kwargs.setdefault("port", 0)
        server = cls(EchoService, hostname="127.0.0.1", **kwargs)
        servers.append(server)
        server.start_in_thread()
        return server

    yield make
    for server in servers:
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


def test_port_unset_until_listening():
    server = ThreadedServer(EchoService, port=0)
    assert server.port is None
    assert not server.listening.is_set()
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        assert server.listening.wait(10)
        assert isinstance(server.port, int)
        assert server.port > 0
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    finally:
        server.close()
        thread.join(10)
    assert not thread.is_alive()


def test_default_hostname_is_loopback():
    server = ThreadedServer(EchoService, port=0)
    try:
        server.start_in_thread()
        assert server.hostname == "127.0.0.1"
        assert server._listener.getsockname()[0] == "127.0.0.1"
    finally:
        server.close()


@pytest.mark.parametrize("server_class", [ThreadedServer, ThreadPoolServer])
def test_calls_and_connection_config(server_class, make_server, closing):
    server = make_server(server_class)
    conn = closing(connect("127.0.0.1", server.port))
    assert conn.root.echo((1, "a")) == (1, "a")
    credentials, endpoints, connid = conn.root.facts()
    assert credentials is None
    local, peer = endpoints
    assert local[1] == server.port
    assert peer[0] == "127.0.0.1"
    assert connid.startswith("127.0.0.1:")


def test_accepted_socket_has_nodelay(make_server, closing):
    server = make_server()
    conn = closing(connect("127.0.0.1", server.port))
    conn.root.facts()  # one round trip, so the server has accepted the client
    with server._lock:
        socks = list(server._clients.values())
    assert socks
    assert socks[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_close_joins_every_thread(closing):
    before = set(threading.enumerate())
    server = ThreadedServer(EchoService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    conns = [closing(connect("127.0.0.1", server.port)) for _ in range(3)]
    for number, conn in enumerate(conns):
        assert conn.root.echo(number) == number
    assert len(set(threading.enumerate()) - before) >= 4  # accept thread + 3 clients
    server.close()
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []
    with pytest.raises(EOFError):
        conns[0].root.echo(1)


@pytest.mark.parametrize("server_class", [ThreadedServer, ThreadPoolServer])
def test_authenticator_rejection_keeps_serving(
    server_class, make_server, closing, caplog
):
    def authenticator(sock):
        token = sock.recv(1)
        if token != b"Y":
            raise AuthenticationError(f"bad token {token!r}")
        return sock, "user:alice"

    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = make_server(server_class, authenticator=authenticator)
    rejected = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    rejected.sendall(b"N")
    assert rejected.recv(1) == b""  # the server hung up
    rejected.close()
    accepted = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    accepted.sendall(b"Y")
    conn = closing(connect_socket(accepted, service=Service))
    assert conn.root.echo("still serving") == "still serving"
    assert conn.root.facts()[0] == "user:alice"
    assert "rejected by authenticator: bad token b'N'" in caplog.text


@pytest.mark.parametrize("server_class", [ThreadedServer, ThreadPoolServer])
def test_protocol_error_affects_one_client(server_class, make_server, closing):
    server = make_server(server_class)
    good = closing(connect("127.0.0.1", server.port))
    assert good.root.echo(1) == 1
    bad = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    # A frame with message type 9, which does not exist in RPyC 6.
    payload = b"\x09\x11\x50\x02"
    bad.sendall(struct.pack("!LB", len(payload), 0) + payload + b"\n")
    bad.settimeout(10)
    received = b""
    while True:  # the server may send its CLOSE request, then it hangs up
        data = bad.recv(4096)
        if not data:
            break
        received += data
    bad.close()
    assert good.root.echo(2) == 2


def test_threadpool_serves_20_concurrent_clients(make_server, closing):
    EchoService.barrier = threading.Barrier(20, timeout=20)
    server = make_server(ThreadPoolServer, nbThreads=20)
    conns = [closing(connect("127.0.0.1", server.port)) for _ in range(20)]
    results = {}
    errors = []

    def call(number):
        try:
            results[number] = conns[number].root.meet(number * 10)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == {n: n * 10 for n in range(20)}


def test_threadpool_serves_callbacks(make_server, closing):
    server = make_server(ThreadPoolServer, nbThreads=2)
    conn = closing(connect("127.0.0.1", server.port))
    assert conn.root.call_back(lambda v: v + 1, 41) == 42
    for number in range(50):
        assert conn.root.echo(number) == number


def test_threadpool_close_joins_threads(closing):
    before = set(threading.enumerate())
    server = ThreadPoolServer(EchoService, hostname="127.0.0.1", port=0, nbThreads=4)
    server.start_in_thread()
    conn = closing(connect("127.0.0.1", server.port))
    assert conn.root.echo("x") == "x"
    server.close()
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def test_threadpool_rejects_bad_thread_count():
    with pytest.raises(ValueError, match="nbThreads must be an int >= 1, not 0"):
        ThreadPoolServer(EchoService, nbThreads=0)


def test_unix_socket_mode_0600(tmp_path, closing):
    path = str(tmp_path / "engine.sock")
    server = ThreadedServer(EchoService, socket_path=path)
    server.start_in_thread()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert server.port is None
        conn = closing(unix_connect(path))
        assert conn.root.echo("unix") == "unix"
    finally:
        server.close()
    assert not os.path.exists(path)


def test_unix_stale_socket_replaced(tmp_path, closing):
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # leaves the file behind with nobody listening
    server = ThreadedServer(EchoService, socket_path=path)
    server.start_in_thread()
    try:
        conn = closing(unix_connect(path))
        assert conn.root.echo(5) == 5
    finally:
        server.close()


def test_unix_path_that_is_a_file_rejected(tmp_path):
    path = tmp_path / "plain-file"
    path.write_text("keep me")
    server = ThreadedServer(EchoService, socket_path=str(path))
    with pytest.raises(FileExistsError, match="not a socket"):
        server.start_in_thread()
    assert path.read_text() == "keep me"


def test_unix_path_in_use_rejected(tmp_path):
    path = str(tmp_path / "busy.sock")
    first = ThreadedServer(EchoService, socket_path=path)
    first.start_in_thread()
    try:
        second = ThreadedServer(EchoService, socket_path=path)
        with pytest.raises(OSError, match="another server is listening"):
            second.start_in_thread()
    finally:
        first.close()


def test_lifecycle_is_logged(make_server, closing, caplog):
    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = make_server()
    conn = connect("127.0.0.1", server.port)
    conn.root.echo(1)
    conn.close()
    server.close()
    text = caplog.text
    assert "listening" in text
    assert "accepted" in text
    assert "disconnected" in text
    assert "stopped" in text


def test_ipv6_loopback(closing):
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    server = ThreadedServer(EchoService, hostname="::1", port=0)
    try:
        server.start_in_thread()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        conn = closing(connect("::1", server.port, ipv6=True))
        assert conn.root.echo("v6") == "v6"
    finally:
        server.close()


def test_authenticator_error_is_logged(make_server, closing, caplog):
    def broken(sock):
        raise RuntimeError("authenticator bug")

    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = make_server(authenticator=broken)
    client = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    assert client.recv(1) == b""
    client.close()
    assert "authenticator failed" in caplog.text
    assert "authenticator bug" in caplog.text


class CountingService(Service):
    def __init__(self):
        self.connects = 0

    def on_connect(self, conn):
        self.connects += 1

    def exposed_count(self):
        return self.connects


def test_service_instance_is_shared(closing):
    shared = CountingService()
    server = ThreadedServer(shared, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    try:
        first = closing(connect("127.0.0.1", server.port))
        assert first.root.count() == 1
        second = closing(connect("127.0.0.1", server.port))
        assert second.root.count() == 2
        assert shared.connects == 2
    finally:
        server.close()


def test_service_class_gets_instance_per_connection(closing):
    server = ThreadedServer(CountingService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    try:
        first = closing(connect("127.0.0.1", server.port))
        second = closing(connect("127.0.0.1", server.port))
        assert first.root.count() == 1
        assert second.root.count() == 1
    finally:
        server.close()


def test_threadpool_over_tls(tmp_path, closing):
    trustme = pytest.importorskip("trustme")
    from rpyc_engine.tls import SSLAuthenticator, ssl_connect

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "s.pem", "s.key"))
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    server = ThreadPoolServer(
        EchoService,
        hostname="127.0.0.1",
        port=0,
        nbThreads=2,
        authenticator=SSLAuthenticator(str(key_file), str(cert_file)),
    )
    server.start_in_thread()
    try:
        conn = closing(ssl_connect("127.0.0.1", server.port, ca_certs=str(ca_file)))
        # Larger than one TLS record, so the server reads it in several pieces.
        big = b"\xa5" * 200_000
        for _ in range(5):
            assert conn.root.echo(big) == big
        assert conn.root.echo("small") == "small"
    finally:
        server.close()


def test_start_closes_on_keyboard_interrupt(closing):
    server = ThreadedServer(EchoService, hostname="127.0.0.1", port=0)
    calls = []

    def interrupt_loop():
        calls.append(1)
        raise KeyboardInterrupt

    server._accept_loop = interrupt_loop  # stands in for Ctrl-C during accept()
    server.start()
    assert calls == [1]
    assert server._closed.is_set()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
