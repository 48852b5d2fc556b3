"""DeployedServer over a plumbum SshMachine, against the throwaway sshd on 127.0.0.1."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import threading

import pytest
from deploy_checks import (
    SCRATCH_ROOTS,
    files_owned_by,
    inet_sockets_of,
    process_gone,
    process_uid,
    reachable_unix_sockets_of,
    tcp_listeners_of_uid,
)

from rpyc_engine.deploy import DeployedServer, TimeoutExpired
from rpyc_engine.deploy.errors import PHASES
from rpyc_engine.protocol.errors import ConnectionClosed

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def machine(sshd_server):
    machine = sshd_server.ssh_machine()
    yield machine
    machine.close()


@pytest.fixture
def deployed(machine):
    server = DeployedServer(machine)
    yield server
    server.close()


def _scratch_roots(uid: int) -> tuple:
    return (*SCRATCH_ROOTS, pwd.getpwuid(uid).pw_dir)


def test_first_call_runs_as_test_user(deployed, sshd_server):
    """A classic call runs in another process, as the sshd's login user."""
    conn = deployed.classic_connect()
    remote_pid = conn.modules.os.getpid()
    assert remote_pid != os.getpid()
    assert remote_pid == deployed.remote_pid
    assert conn.modules.os.getuid() == sshd_server.uid
    assert process_uid(remote_pid) == sshd_server.uid


def test_remote_python_is_debians(deployed):
    """The remote side uses the host's interpreter, not the one running the tests."""
    conn = deployed.classic_connect()
    assert conn.modules.sys.executable.startswith("/usr/bin/python3")
    assert deployed.python.startswith("/usr/bin/python3")
    assert deployed.python_version >= (3, 8)


def test_progress_reports_every_phase(machine):
    """The progress callback receives the four phases in order."""
    seen = []
    server = DeployedServer(
        machine, progress=lambda phase, fraction, detail: seen.append(phase)
    )
    server.close()
    first_seen = list(dict.fromkeys(seen))
    assert first_seen == list(PHASES)


def test_no_listener_while_deployed(private_sshd):
    """The server has no TCP/UDP socket and no named or listening Unix socket."""
    machine = private_sshd.ssh_machine()
    try:
        with DeployedServer(machine) as server:
            conn = server.classic_connect()
            assert conn.modules.os.getpid() == server.remote_pid
            assert inet_sockets_of(server.remote_pid) == []
            assert reachable_unix_sockets_of(server.remote_pid) == []
            # The login user is this test's own, so any TCP listener would be ours.
            assert tcp_listeners_of_uid(private_sshd.uid) == []
    finally:
        machine.close()


def test_nothing_written_and_gone_after_close(private_sshd):
    """The deploy writes no file, and the server process ends when close() returns."""
    uid = private_sshd.uid
    roots = _scratch_roots(uid)
    before = files_owned_by(uid, roots)
    machine = private_sshd.ssh_machine()
    try:
        server = DeployedServer(machine)
        conn = server.classic_connect()
        assert conn.modules.os.getuid() == uid
        during = files_owned_by(uid, roots)
        pid = server.remote_pid
        local_pid = server.local_pid
        leftovers = server.close()
    finally:
        machine.close()
    assert leftovers == ()
    assert during == before
    assert files_owned_by(uid, roots) == before
    assert process_gone(pid, within=0.5)
    assert process_gone(local_pid, within=0.5)


def test_two_connects_work(deployed):
    """Two connections on one deployment reach the same server independently."""
    first = deployed.classic_connect()
    second = deployed.classic_connect()
    first.execute("marker = 41")
    assert first.eval("marker + 1") == 42
    assert second.modules.os.getpid() == deployed.remote_pid
    second.close()
    assert first.modules.os.getpid() == deployed.remote_pid


def test_machine_stays_open_after_close(machine):
    """close() leaves the caller's SshMachine usable, unlike stock rpyc."""
    server = DeployedServer(machine)
    server.close()
    assert machine["true"]() == ""


def test_close_timeout_on_frozen_server(machine):
    """A stopped server makes close(timeout) raise, with no local ssh child left."""
    server = DeployedServer(machine)
    pid = server.remote_pid
    local_pid = server.local_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutExpired) as raised:
            server.close(timeout=1)
        assert process_gone(local_pid, within=0.5)
        assert [leftover.pid for leftover in raised.value.leftovers] == [pid]
        assert str(pid) in str(raised.value)
    finally:
        os.kill(pid, signal.SIGCONT)
        if not process_gone(pid, within=5):
            os.kill(pid, signal.SIGKILL)
    assert process_gone(pid, within=5)


def test_killed_ssh_fails_pending_call(machine):
    """Killing the local ssh client makes a pending call raise ConnectionClosed."""
    server = DeployedServer(machine)
    conn = server.classic_connect()
    sleep = conn.modules.time.sleep
    outcome = []

    def call() -> None:
        try:
            sleep(60)
            outcome.append("returned")
        except ConnectionClosed as exc:
            outcome.append(exc)
        except Exception as exc:  # recorded so the assert below shows it
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    os.kill(server.local_pid, signal.SIGKILL)
    caller.join(timeout=15)
    try:
        assert not caller.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], ConnectionClosed)
        assert process_gone(server.remote_pid, within=5)
    finally:
        leftovers = server.close()
    assert leftovers == ()


def test_server_exits_when_heartbeat_stops(machine):
    """With the ssh client stopped, the server exits after its missed heartbeats."""
    server = DeployedServer(machine, heartbeat=0.2, heartbeat_misses=3)
    os.kill(server.local_pid, signal.SIGSTOP)
    try:
        assert process_gone(server.remote_pid, within=10)
    finally:
        os.kill(server.local_pid, signal.SIGCONT)
        server.close()


def test_explorer_service_deploys(machine, sshd_server):
    """The app's ExplorerService, given as a class, serves its home() on the host."""
    from rpyc_engine.services.explorer import ExplorerService

    with DeployedServer(machine, service=ExplorerService) as server:
        conn = server.connect()
        assert conn.root.home() == pwd.getpwuid(sshd_server.uid).pw_dir


def test_other_user_cannot_take_channel(deployed):
    """User nobody can neither list nor open the server's socket descriptors."""
    if os.geteuid() != 0:
        pytest.skip("switching to user nobody needs root")
    probe = (
        "import os, sys\n"
        "fd_dir = '/proc/%d/fd' % int(sys.argv[1])\n"
        "try:\n"
        "    os.listdir(fd_dir)\n"
        "except PermissionError:\n"
        "    print('listing denied')\n"
        "try:\n"
        "    os.open(fd_dir + '/0', os.O_RDWR)\n"
        "except PermissionError:\n"
        "    print('open denied')\n"
    )
    completed = subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "/usr/bin/python3",
            "-c",
            probe,
            str(deployed.remote_pid),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:2] == ["listing denied", "open denied"]


@pytest.fixture(scope="module")
def chatty_sshd():
    """An sshd whose login prints a greeting on stdout before running any command."""
    from sshd import start_sshd

    greeting = 'echo "Welcome to the test host"; eval "$SSH_ORIGINAL_COMMAND"'
    server = start_sshd(extra_config=[f"ForceCommand {greeting}"])
    yield server
    server.stop()


def test_login_output_is_skipped(chatty_sshd):
    """Output a login prints before the server starts does not break the deploy."""
    assert chatty_sshd.run("echo ok").stdout == "Welcome to the test host\nok\n"
    machine = chatty_sshd.ssh_machine()
    try:
        with DeployedServer(machine) as server:
            conn = server.classic_connect()
            assert conn.modules.os.getpid() == server.remote_pid
    finally:
        machine.close()
