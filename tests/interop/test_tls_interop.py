"""TLS interop with stock rpyc 6.0.2, both ways, with and without client certificates.

Stock's server runs in a subprocess behind stock's ``SSLAuthenticator``; stock's
``ssl_connect`` runs in this process against our ``ThreadedServer`` and
``SSLAuthenticator``. Certificates are made per module by trustme.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import types

import pytest
import trustme

rpyc = pytest.importorskip("rpyc")

from rpyc_engine import aio  # noqa: E402
from rpyc_engine.server import ThreadedServer  # noqa: E402
from rpyc_engine.services.base import Service  # noqa: E402
from rpyc_engine.tls import SSLAuthenticator, TLSError, client_context, ssl_connect  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# Stock server: prints its port, then serves until its stdin closes.
STOCK_SERVER = textwrap.dedent(
    """
    import sys, threading
    import rpyc
    from rpyc.utils.authenticators import SSLAuthenticator
    from rpyc.utils.server import ThreadedServer

    class PeerService(rpyc.Service):
        def on_connect(self, conn):
            self._credentials = conn._config["credentials"]

        def exposed_echo(self, value):
            return value

        def exposed_peer_common_name(self):
            if not self._credentials:
                return None
            return dict(rdn[0] for rdn in self._credentials["subject"])["commonName"]

    keyfile, certfile, ca_certs = sys.argv[1:4]
    authenticator = SSLAuthenticator(keyfile, certfile, ca_certs=ca_certs or None)
    server = ThreadedServer(
        PeerService, hostname="127.0.0.1", port=0, authenticator=authenticator
    )
    server._listen()
    threading.Thread(target=server.start, daemon=True).start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()
    """
)


class PeerService(Service):
    """Our side's service: echo and the TLS peer's common name from the credentials."""

    def on_connect(self, conn):
        self._credentials = conn._config["credentials"]

    def exposed_echo(self, value):
        return value

    def exposed_peer_common_name(self):
        if not self._credentials:
            return None
        return dict(rdn[0] for rdn in self._credentials["subject"])["commonName"]

    def exposed_collect(self, make_list, count):
        return tuple(make_list(number)[0] for number in range(count))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("interop-pki")
    ca = trustme.CA()
    paths = {}
    ca.cert_pem.write_to_path(directory / "ca.pem")
    paths["ca"] = str(directory / "ca.pem")
    leaves = {
        "server": ca.issue_cert("localhost", "127.0.0.1"),
        "client": ca.issue_cert("client1@example.org", common_name="client1"),
    }
    for name, leaf in leaves.items():
        path = directory / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(path)
        paths[name] = str(path)
    return types.SimpleNamespace(**paths)


@pytest.fixture
def stock_tls_server(pki):
    procs = []

    def start(require_client_cert):
        ca_certs = pki.ca if require_client_cert else ""
        argv = [sys.executable, "-c", STOCK_SERVER, pki.server, pki.server, ca_certs]
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return int(proc.stdout.readline())

    yield start
    for proc in procs:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def engine_tls_server(pki):
    servers = []

    def start(require_client_cert):
        ca_certs = pki.ca if require_client_cert else None
        authenticator = SSLAuthenticator(pki.server, pki.server, ca_certs=ca_certs)
        server = ThreadedServer(
            PeerService, hostname="127.0.0.1", port=0, authenticator=authenticator
        )
        servers.append(server)
        server.start_in_thread()
        return server.port

    yield start
    for server in servers:
        server.close()


def test_engine_client_stock_server(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=False)
    conn = ssl_connect("localhost", port, ca_certs=pki.ca)
    try:
        assert conn.root.echo("hello") == "hello"
        assert conn.root.peer_common_name() is None
    finally:
        conn.close()


def test_engine_client_many_calls_stock_server(stock_tls_server, pki):
    """Each call drops a method proxy, so DELs travel with the next request."""
    port = stock_tls_server(require_client_cert=False)
    conn = ssl_connect("localhost", port, ca_certs=pki.ca)
    try:
        root = conn.root
        assert [root.echo(n) for n in range(50)] == list(range(50))
    finally:
        conn.close()


def test_engine_client_cert_stock_server(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=True)
    conn = ssl_connect(
        "localhost", port, keyfile=pki.client, certfile=pki.client, ca_certs=pki.ca
    )
    try:
        assert conn.root.peer_common_name() == "client1"
    finally:
        conn.close()


def test_engine_client_missing_cert_named(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=True)
    with pytest.raises(TLSError) as info:
        ssl_connect("localhost", port, ca_certs=pki.ca)
    assert info.value.check == "client-certificate-required"


def test_engine_client_checks_stock_hostname(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=False)
    with pytest.raises(TLSError) as info:
        ssl_connect("127.0.0.1", port, ca_certs=pki.ca, server_hostname="other.example")
    assert info.value.check == "hostname-mismatch"


def test_aio_client_stock_server(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=True)

    async def scenario():
        context = client_context(
            certfile=pki.client, keyfile=pki.client, ca_certs=pki.ca
        )
        conn = await aio.connect("localhost", port, ssl=context)
        try:
            root = await aio.root(conn)
            return await aio.callattr(root, "peer_common_name")
        finally:
            await aio.close(conn)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == "client1"


def test_aio_many_calls_stock_server(stock_tls_server, pki):
    port = stock_tls_server(require_client_cert=False)

    async def scenario():
        conn = await aio.connect("localhost", port, ssl=client_context(ca_certs=pki.ca))
        try:
            root = await aio.root(conn)
            results = []
            for number in range(30):
                echo = await aio.getattr(
                    root, "echo"
                )  # dropped: DEL with the next call
                results.append(await aio.call(echo, number))
            return results
        finally:
            await aio.close(conn)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == list(range(30))


def test_stock_client_engine_server(engine_tls_server, pki):
    port = engine_tls_server(require_client_cert=False)
    conn = rpyc.ssl_connect("localhost", port, ca_certs=pki.ca)
    try:
        assert conn.root.echo(42) == 42
        assert conn.root.peer_common_name() is None
    finally:
        conn.close()


def test_stock_client_cert_engine_server(engine_tls_server, pki):
    port = engine_tls_server(require_client_cert=True)
    conn = rpyc.ssl_connect(
        "localhost", port, keyfile=pki.client, certfile=pki.client, ca_certs=pki.ca
    )
    try:
        assert conn.root.peer_common_name() == "client1"
    finally:
        conn.close()


def test_stock_client_callbacks_engine_server(engine_tls_server, pki):
    """Our server drops a proxy per callback, so DELs travel with its next request."""
    port = engine_tls_server(require_client_cert=False)
    conn = rpyc.ssl_connect("localhost", port, ca_certs=pki.ca)
    try:
        assert conn.root.collect(lambda n: [n], 30) == tuple(range(30))
    finally:
        conn.close()


def test_stock_client_missing_cert_rejected(engine_tls_server, pki):
    port = engine_tls_server(require_client_cert=True)
    conn = rpyc.ssl_connect("localhost", port, ca_certs=pki.ca)
    try:
        with pytest.raises(EOFError):  # stock reports the TLS 1.3 alert as EOFError
            conn.root.echo(1)
    finally:
        conn.close()


def test_stock_plain_client_told_to_use_tls(engine_tls_server):
    port = engine_tls_server(require_client_cert=False)
    conn = rpyc.connect("127.0.0.1", port)
    try:
        with pytest.raises(ConnectionRefusedError, match="this server requires TLS"):
            conn.root  # noqa: B018 - GETROOT is the refused request
    finally:
        conn.close()
