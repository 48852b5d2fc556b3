"""TLS: ssl_connect and SSLAuthenticator with real certificates made by trustme."""

from __future__ import annotations

import datetime
import logging
import ssl
import subprocess
import sys
import time
import types

import pytest
import trustme

from rpyc_engine.factory import connect
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.base import Service
from rpyc_engine.tls import SSLAuthenticator, TLSError, ssl_connect

pytestmark = pytest.mark.timeout(60)


class CredentialsService(Service):
    """Test service that returns what the server knows about the TLS peer."""

    def on_connect(self, conn):
        self._conn = conn

    def exposed_echo(self, value):
        return value

    def exposed_peer_common_name(self):
        credentials = self._conn._config["credentials"]
        if credentials is None:
            return None
        for rdn in credentials["subject"]:
            for key, value in rdn:
                if key == "commonName":
                    return value
        return "<no CN>"


def _write_pem(directory, name, blobs):
    path = directory / name
    path.write_bytes(b"".join(blob.bytes() for blob in blobs))
    return str(path)


def _leaf_files(directory, name, cert):
    return types.SimpleNamespace(
        cert=_write_pem(directory, f"{name}.crt", cert.cert_chain_pems),
        key=_write_pem(directory, f"{name}.key", [cert.private_key_pem]),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """CA, foreign CA, server certs (good, expired) and client certs, as PEM files."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    foreign_ca = trustme.CA()
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    files = types.SimpleNamespace(
        ca=_write_pem(directory, "ca.pem", [ca.cert_pem]),
        foreign_ca=_write_pem(directory, "foreign-ca.pem", [foreign_ca.cert_pem]),
        server=_leaf_files(
            directory, "server", ca.issue_cert("localhost", "127.0.0.1")
        ),
        expired=_leaf_files(
            directory,
            "expired",
            ca.issue_cert(
                "localhost",
                "127.0.0.1",
                not_before=past,
                not_after=past + datetime.timedelta(days=30),
            ),
        ),
        client=_leaf_files(
            directory,
            "client",
            ca.issue_cert("client1@example.org", common_name="client1"),
        ),
        foreign_client=_leaf_files(
            directory,
            "foreign-client",
            foreign_ca.issue_cert("client2@example.org", common_name="client2"),
        ),
    )
    return files


@pytest.fixture
def start_server():
    servers = []

    def start(authenticator=None):
        server = ThreadedServer(
            CredentialsService,
            hostname="127.0.0.1",
            port=0,
            authenticator=authenticator,
        )
        servers.append(server)
        server.start_in_thread()
        return server

    yield start
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


def _wait_for_log(caplog, text, timeout=10.0):
    """Wait until ``text`` is logged, which the server does after the client fails."""
    deadline = time.monotonic() + timeout
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)


def _tls_server(start_server, pki, leaf=None, client_ca=None):
    leaf = leaf or pki.server
    return start_server(SSLAuthenticator(leaf.key, leaf.cert, ca_certs=client_ca))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_good_chain_connects(start_server, pki, closing, host):
    server = _tls_server(start_server, pki)
    conn = closing(ssl_connect(host, server.port, ca_certs=pki.ca))
    assert conn.root.echo("over tls") == "over tls"
    assert conn.root.peer_common_name() is None


def test_hostname_mismatch_named(start_server, pki):
    server = _tls_server(start_server, pki)
    with pytest.raises(TLSError) as info:
        ssl_connect(
            "127.0.0.1",
            server.port,
            ca_certs=pki.ca,
            server_hostname="wrong.example.org",
        )
    assert info.value.check == "hostname-mismatch"
    assert "does not match the host name" in str(info.value)
    assert "'wrong.example.org'" in str(info.value)


def test_unknown_ca_named(start_server, pki):
    server = _tls_server(start_server, pki)
    with pytest.raises(TLSError) as info:
        ssl_connect("localhost", server.port, ca_certs=pki.foreign_ca)
    assert info.value.check == "unknown-ca"
    assert "unknown CA" in str(info.value)
    assert "ca_certs=" in str(info.value)


def test_system_store_rejects_private_ca(start_server, pki):
    server = _tls_server(start_server, pki)
    with pytest.raises(TLSError) as info:
        ssl_connect("localhost", server.port)
    assert info.value.check == "unknown-ca"


def test_expired_certificate_named(start_server, pki):
    server = _tls_server(start_server, pki, leaf=pki.expired)
    with pytest.raises(TLSError) as info:
        ssl_connect("localhost", server.port, ca_certs=pki.ca)
    assert info.value.check == "certificate-expired"
    assert "server's certificate has expired" in str(info.value)


def test_missing_client_certificate(start_server, pki, caplog):
    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = _tls_server(start_server, pki, client_ca=pki.ca)
    with pytest.raises(TLSError) as info:
        ssl_connect("localhost", server.port, ca_certs=pki.ca)
    assert info.value.check == "client-certificate-required"
    assert "the server requires a client certificate" in str(info.value)
    assert not isinstance(info.value, EOFError)
    _wait_for_log(caplog, "sent no client certificate")
    server_lines = [
        r.getMessage() for r in caplog.records if "rejected" in r.getMessage()
    ]
    assert any("sent no client certificate" in line for line in server_lines)
    assert any("127.0.0.1:" in line for line in server_lines)


def test_client_certificate_becomes_credentials(start_server, pki, closing):
    server = _tls_server(start_server, pki, client_ca=pki.ca)
    conn = closing(
        ssl_connect(
            "localhost",
            server.port,
            keyfile=pki.client.key,
            certfile=pki.client.cert,
            ca_certs=pki.ca,
        )
    )
    assert conn.root.peer_common_name() == "client1"


def test_foreign_client_certificate_rejected(start_server, pki, caplog):
    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = _tls_server(start_server, pki, client_ca=pki.ca)
    with pytest.raises(TLSError) as info:
        ssl_connect(
            "localhost",
            server.port,
            keyfile=pki.foreign_client.key,
            certfile=pki.foreign_client.cert,
            ca_certs=pki.ca,
        )
    assert info.value.check == "client-certificate-rejected"
    assert "refused the client certificate" in str(info.value)
    _wait_for_log(caplog, "unknown CA")
    assert "its client certificate was issued by an unknown CA" in caplog.text


def test_plain_client_told_to_use_tls(start_server, pki, closing, caplog):
    caplog.set_level(logging.INFO, logger="rpyc_engine.server")
    server = _tls_server(start_server, pki)
    conn = closing(connect("127.0.0.1", server.port))
    with pytest.raises(ConnectionRefusedError) as info:
        conn.root  # noqa: B018 - the GETROOT request is what is refused
    assert "this server requires TLS" in str(info.value)
    _wait_for_log(caplog, "sent plain RPyC instead of a TLS handshake")


def test_tls_client_to_plain_port(start_server):
    server = start_server()
    with pytest.raises(TLSError) as info:
        ssl_connect("127.0.0.1", server.port, handshake_timeout=10)
    assert info.value.check in ("not-tls", "handshake")
    assert "127.0.0.1" in str(info.value)


def test_insecure_opt_out_warns(start_server, pki, closing, caplog):
    server = _tls_server(start_server, pki)
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rpyc_engine.tls"):
            conn = closing(
                ssl_connect(
                    "localhost",
                    server.port,
                    ca_certs=pki.foreign_ca,
                    insecure_skip_verify=True,
                )
            )
        assert conn.root.echo(1) == 1
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "verification is OFF" in warnings[0].getMessage()


@pytest.mark.parametrize("argument", ["cert_reqs", "verify_mode"])
def test_cert_none_needs_explicit_opt_out(start_server, pki, argument):
    server = _tls_server(start_server, pki)
    with pytest.raises(ValueError, match="insecure_skip_verify=True"):
        ssl_connect("localhost", server.port, **{argument: ssl.CERT_NONE})


def test_authenticator_needs_ca_for_client_certs(pki):
    with pytest.raises(ValueError, match="ca_certs is not set"):
        SSLAuthenticator(pki.server.key, pki.server.cert, cert_reqs=ssl.CERT_REQUIRED)


def test_old_protocol_versions_disabled(pki):
    authenticator = SSLAuthenticator(pki.server.key, pki.server.cert)
    assert authenticator.context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_cli_serves_tls(pki, closing):
    """``python -m rpyc_engine serve`` with --certfile/--keyfile/--ca-certs."""
    argv = [
        sys.executable, "-m", "rpyc_engine", "serve", "--port", "0",
        "--certfile", pki.server.cert, "--keyfile", pki.server.key,
        "--ca-certs", pki.ca,
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        port = int(proc.stdout.readline())
        with pytest.raises(TLSError) as info:
            ssl_connect("localhost", port, ca_certs=pki.ca)
        assert info.value.check == "client-certificate-required"
        conn = closing(
            ssl_connect(
                "localhost",
                port,
                keyfile=pki.client.key,
                certfile=pki.client.cert,
                ca_certs=pki.ca,
            )
        )
        assert conn.root.get_service_name() == "SERVICE"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_cli_reports_unreadable_tls_files(tmp_path):
    missing = str(tmp_path / "missing.pem")
    argv = [
        sys.executable,
        "-m",
        "rpyc_engine",
        "serve",
        "--port",
        "0",
        "--certfile",
        missing,
    ]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert completed.returncode != 0
    assert "cannot load the TLS files" in completed.stderr
    assert missing in completed.stderr


def test_cli_rejects_tls_with_unix_socket(tmp_path, pki):
    argv = [
        sys.executable, "-m", "rpyc_engine", "serve",
        "--unix", str(tmp_path / "sock"), "--certfile", pki.server.cert,
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert completed.returncode == 2
    assert "TLS options apply to TCP only" in completed.stderr
