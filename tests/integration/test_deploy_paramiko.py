"""DeployedServer over a plumbum ParamikoMachine that checks the pinned host key."""

from __future__ import annotations

import os
import signal
import threading

import paramiko
import pytest
from deploy_checks import (
    inet_sockets_of,
    process_gone,
    reachable_unix_sockets_of,
    tcp_listeners_of_uid,
)

from rpyc_engine.deploy import DeployedServer, TimeoutExpired
from rpyc_engine.protocol.errors import ConnectionClosed

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def machine(sshd_server):
    machine = sshd_server.paramiko_machine()
    yield machine
    machine.close()


def test_first_call_runs_as_test_user(machine, sshd_server):
    """A classic call over a paramiko exec channel runs as the login user."""
    with DeployedServer(machine) as server:
        conn = server.classic_connect()
        assert conn.modules.os.getpid() == server.remote_pid
        assert server.remote_pid != os.getpid()
        assert conn.modules.os.getuid() == sshd_server.uid
        assert server.local_pid is None


def test_no_listener_and_gone_after_close(private_sshd):
    """No TCP or reachable Unix socket while deployed; the process ends on close()."""
    machine = private_sshd.paramiko_machine()
    try:
        server = DeployedServer(machine)
        try:
            server.classic_connect().modules.os.getpid()
            assert inet_sockets_of(server.remote_pid) == []
            assert reachable_unix_sockets_of(server.remote_pid) == []
            # The login user is this test's own, so any TCP listener would be ours.
            assert tcp_listeners_of_uid(private_sshd.uid) == []
        finally:
            leftovers = server.close()
    finally:
        machine.close()
    assert leftovers == ()
    assert process_gone(server.remote_pid, within=0.5)


def test_two_connects_work(machine):
    """Two connections on one deployment share the server but not their namespaces."""
    with DeployedServer(machine) as server:
        first = server.classic_connect()
        second = server.classic_connect()
        first.execute("value = 'first'")
        second.execute("value = 'second'")
        assert first.eval("value") == "first"
        assert second.eval("value") == "second"
        assert first.modules.os.getpid() == second.modules.os.getpid()


def test_close_timeout_on_frozen_server(machine):
    """A stopped server makes close(timeout) raise and names the remote PID."""
    server = DeployedServer(machine)
    pid = server.remote_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutExpired) as raised:
            server.close(timeout=1)
        assert [leftover.pid for leftover in raised.value.leftovers] == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
        if not process_gone(pid, within=5):
            os.kill(pid, signal.SIGKILL)
    assert process_gone(pid, within=5)


def test_password_login(sshd_server):
    """A ParamikoMachine logged in by password deploys like one using a key."""
    if sshd_server.password is None:
        pytest.skip("password login needs the tests to run as root (see tests/sshd.py)")
    machine = sshd_server.paramiko_machine(password=True)
    try:
        with DeployedServer(machine) as server:
            assert server.classic_connect().modules.os.getuid() == sshd_server.uid
    finally:
        machine.close()


def test_unknown_host_key_is_rejected(sshd_server, tmp_path):
    """The pinned-key policy rejects a server whose key is not in known_hosts."""
    other = tmp_path / "known_hosts"
    other.write_text("")
    from sshd import _pinned_policy

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_pinned_policy(str(other)))
    with pytest.raises(paramiko.SSHException):
        client.connect(
            sshd_server.host,
            port=sshd_server.port,
            username=sshd_server.user,
            key_filename=sshd_server.key_path,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    client.close()


def test_dropped_connection_fails_pending_call(sshd_server):
    """Closing the paramiko machine mid-call fails the call with ConnectionClosed."""
    machine = sshd_server.paramiko_machine()
    server = DeployedServer(machine)
    sleep = server.classic_connect().modules.time.sleep
    outcome = []

    def call() -> None:
        try:
            sleep(60)
            outcome.append("returned")
        except Exception as exc:  # recorded so the asserts below show it
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    machine.close()
    caller.join(timeout=15)
    leftovers = server.close()
    assert not caller.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConnectionClosed)
    assert process_gone(server.remote_pid, within=5)
    # With the SSH connection gone, close() cannot check the remote PID and says so.
    assert [leftover.kind for leftover in leftovers] == ["unverified-remote-process"]
