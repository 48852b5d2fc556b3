"""SessionController with targets that need no sshd: this computer and rpyc servers."""

from __future__ import annotations

import os

import keyring.backends.null
import pytest
from rpyc_explorer.machines.credentials import CredentialStore
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.session.controller import SessionController
from rpyc_explorer.session.phases import Phase, SessionError
from rpyc_explorer.session.ssh import pid_alive


async def _never_asked(prompt):
    raise AssertionError(f"no prompt expected, got {prompt!r}")


@pytest.fixture
def controller(app_dirs, qloop, arun):
    known = KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[])
    credentials = CredentialStore(keyring.backends.null.Keyring())
    ctrl = SessionController(credentials, known, _never_asked, _never_asked)
    yield ctrl
    arun(ctrl.close_all(), timeout=30)


def test_local_deploy_reaches_explorer(controller, arun):
    phases: list[str] = []
    controller.phase_changed.connect(
        lambda mid, phase, fraction, detail: phases.append(phase)
    )
    session = arun(controller.connect(Machine.this_computer()), timeout=60)

    assert session.kind == "explorer"
    assert arun(session.call("home")) == os.path.expanduser("~")
    assert controller.sessions == {"local": session}
    for phase in (
        Phase.FINDING_PYTHON,
        Phase.UPLOADING,
        Phase.HANDSHAKE,
        Phase.CONNECTED,
    ):
        assert phase.value in phases

    server_pid = session.deployment.deployment.local_pid
    assert server_pid is not None and pid_alive(server_pid)
    closed: list[tuple[str, str]] = []
    controller.session_closed.connect(lambda mid, reason: closed.append((mid, reason)))
    problems = arun(controller.disconnect("local"), timeout=30)
    assert problems == []
    assert not pid_alive(server_pid)
    assert closed == [("local", "closed by user")]
    assert controller.sessions == {}


def test_two_sessions_and_close_all(controller, arun):
    first = arun(controller.connect(Machine.this_computer()), timeout=60)
    other = Machine.new("second local", kind="local")
    second = arun(controller.connect(other), timeout=60)
    assert first is not second
    pids = [s.deployment.deployment.local_pid for s in (first, second)]

    problems = arun(controller.close_all(), timeout=30)
    assert problems == {}
    assert controller.sessions == {}
    assert not any(pid_alive(pid) for pid in pids)


def test_bad_python_override_names_phase(controller, arun):
    machine = Machine.new("no python", kind="local", python="/nonexistent/python9")
    failures: list[str] = []
    controller.connect_failed.connect(lambda mid, message: failures.append(message))
    with pytest.raises(SessionError) as info:
        arun(controller.connect(machine), timeout=60)
    assert info.value.phase is Phase.FINDING_PYTHON
    assert "/nonexistent/python9" in str(info.value)
    # The hint names the machine dialog's field, not the engine's argument.
    assert 'the machine\'s "Python" field' in info.value.hint
    assert "override" not in str(info.value)
    assert failures == [str(info.value)]


def test_rpyc_classic_server(controller, arun):
    import rpyc_engine

    server = rpyc_engine.ThreadedServer(rpyc_engine.SlaveService, port=0)
    server.start_in_thread()
    try:
        machine = Machine.new(
            "running server", kind="rpyc", host="127.0.0.1", port=server.port
        )
        session = arun(controller.connect(machine), timeout=30)
        assert session.kind == "classic"
        assert arun(session.call("eval", "6 * 7")) == 42
        assert arun(controller.disconnect(machine.id)) == []
    finally:
        server.close()


def test_rpyc_refused_port(controller, arun):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    machine = Machine.new("nothing there", kind="rpyc", host="127.0.0.1", port=port)
    with pytest.raises(SessionError) as info:
        arun(controller.connect(machine), timeout=30)
    assert info.value.phase is Phase.CONNECTING
    assert f"cannot connect to 127.0.0.1:{port}" in str(info.value)
    assert "rpyc server is running" in str(info.value)


@pytest.fixture
def tls_files(tmp_path):
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1")
    client_cert = authority.issue_cert("client@example.org")
    files = {}
    for name, blob in {
        "ca": authority.cert_pem,
        "server": server_cert.private_key_and_cert_chain_pem,
        "client": client_cert.private_key_and_cert_chain_pem,
    }.items():
        path = tmp_path / f"{name}.pem"
        blob.write_to_path(str(path))
        files[name] = str(path)
    return files


def test_rpyc_tls_server_with_client_certificate(controller, arun, tls_files):
    import rpyc_engine

    authenticator = rpyc_engine.SSLAuthenticator(
        tls_files["server"], tls_files["server"], ca_certs=tls_files["ca"]
    )
    server = rpyc_engine.ThreadedServer(
        rpyc_engine.SlaveService, port=0, authenticator=authenticator
    )
    server.start_in_thread()
    try:
        machine = Machine.new(
            "tls server",
            kind="rpyc",
            host="127.0.0.1",
            port=server.port,
            rpyc_tls=True,
            rpyc_certfile=tls_files["client"],
            rpyc_keyfile=tls_files["client"],
            rpyc_ca_certs=tls_files["ca"],
        )
        session = arun(controller.connect(machine), timeout=30)
        assert arun(session.call("eval", "'tls'.upper()")) == "TLS"

        untrusted = machine.replace(id="untrusted", rpyc_ca_certs="")
        with pytest.raises(SessionError) as info:
            arun(controller.connect(untrusted), timeout=30)
        assert info.value.phase is Phase.HANDSHAKE
        assert "TLS handshake with 127.0.0.1" in str(info.value)
    finally:
        server.close()


def test_cancelling_caller_cancels_attempt(controller, qloop, arun):
    import asyncio

    seen: list[str] = []
    controller.phase_changed.connect(
        lambda mid, phase, fraction, detail: seen.append(phase)
    )

    async def start_then_cancel() -> None:
        caller = asyncio.ensure_future(controller.connect(Machine.this_computer()))
        while Phase.FINDING_PYTHON.value not in seen:
            await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller

    arun(start_then_cancel(), timeout=60)
    assert not controller.is_connecting("local")
    assert controller.sessions == {}


def test_connect_again_after_close_all(controller, arun):
    arun(controller.connect(Machine.this_computer()), timeout=60)
    assert arun(controller.close_all(), timeout=30) == {}
    session = arun(controller.connect(Machine.this_computer()), timeout=60)
    assert session.kind == "explorer"


def test_missing_ssh_client_named(controller, arun, tmp_path, monkeypatch):
    empty = tmp_path / "bin-without-ssh"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    machine = Machine.new("no client", kind="ssh", host="127.0.0.1", user="nobody")
    with pytest.raises(SessionError) as info:
        arun(controller.connect(machine), timeout=30)

    message = str(info.value)
    assert info.value.phase is Phase.CONNECTING
    assert "OpenSSH client is not installed or not found on PATH" in message
    assert "openssh-client" in info.value.hint
    assert "~/.ssh/config" not in message
    assert "configuration" not in message
