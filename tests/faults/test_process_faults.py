"""Processes of a deployment over the loopback sshd killed or frozen during a call."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from fault_helpers import child_pids, process_gone, wait_until

from rpyc_engine import AsyncResultTimeout, ConnectionClosed
from rpyc_engine.deploy import DeployedServer
from rpyc_engine.services.classic import ClassicService

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(120)]

CALL_TIMEOUT = 2
# How long a pending call may take to notice the fault. Generous, because it only
# bounds a hang; a call that never fails would otherwise wait for its 60 s sleep.
NOTICE_WITHIN = 20


@pytest.fixture
def machine(sshd_server):
    machine = sshd_server.ssh_machine()
    yield machine
    machine.close()


@pytest.fixture
def deployed(machine, sshd_server, thread_watch):
    """A classic server deployed over SSH; afterwards no process of it may remain.

    Processes are counted in two groups: this process's own children outside the
    sshd (the ssh clients), and the sshd's session processes of the deployment.
    """
    before_local = _local_children(sshd_server.pid)
    before_sessions = child_pids(sshd_server.pid)
    server = DeployedServer(machine)
    yield server
    leftovers = server.close()
    assert leftovers == ()
    assert process_gone(server.remote_pid, within=5)
    wait_until(lambda: _local_children(sshd_server.pid) <= before_local, 5)
    left_local = {
        pid: _cmdline(pid) for pid in _local_children(sshd_server.pid) - before_local
    }
    assert left_local == {}
    assert wait_until(lambda: child_pids(sshd_server.pid) <= before_sessions, 15)


def _local_children(sshd_pid: int) -> set:
    return child_pids() - child_pids(sshd_pid) - {sshd_pid}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "(exited)"


def _call_in_thread(function, *args):
    """Start ``function(*args)`` on a thread; return the thread and its outcome list."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(function(*args))
        except BaseException as exc:  # recorded so the test can check what was raised
            outcome.append(exc)

    thread = threading.Thread(target=run, name="pending call")
    thread.start()
    return thread, outcome


def _sleep_started(conn, marker: str) -> bool:
    return conn.eval(f"__import__('builtins').__dict__.get({marker!r}, False)")


def _pending_sleep(server: DeployedServer):
    """Open a connection and start a remote 60 s sleep that is known to be running."""
    conn = server.classic_connect()
    probe = server.classic_connect()
    conn.execute(
        "import builtins, time\n"
        "def sleep_marked(seconds):\n"
        "    builtins.sleeping = True\n"
        "    time.sleep(seconds)\n"
    )
    thread, outcome = _call_in_thread(conn.namespace["sleep_marked"], 60)
    assert wait_until(lambda: _sleep_started(probe, "sleeping"), 10)
    probe.close()
    return conn, thread, outcome


def test_ssh_client_killed_mid_call(deployed):
    """Killing the local ssh client fails the pending call with ConnectionClosed."""
    conn, thread, outcome = _pending_sleep(deployed)
    os.kill(deployed.local_pid, signal.SIGKILL)
    thread.join(NOTICE_WITHIN)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConnectionClosed)
    assert isinstance(outcome[0], EOFError)
    message = str(outcome[0])
    assert message.startswith("CALL on <netref")
    assert "closed (stream ended" in message
    assert conn.closed
    # Without its SSH session the server's stdin ends, so it exits on its own.
    assert process_gone(deployed.remote_pid, within=10)
    with pytest.raises(ConnectionClosed):
        conn.eval("1")


def test_remote_server_killed_mid_call(deployed):
    """kill -9 of the remote server fails the pending call; the ssh client exits."""
    conn, thread, outcome = _pending_sleep(deployed)
    survivor_check = deployed.classic_connect()
    assert survivor_check.eval("6 * 7") == 42
    survivor_check.close()
    os.kill(deployed.remote_pid, signal.SIGKILL)
    thread.join(NOTICE_WITHIN)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConnectionClosed)
    assert "CALL on <netref" in str(outcome[0])
    assert conn.closed
    assert process_gone(deployed.local_pid, within=10)


def test_frozen_remote_times_out(deployed):
    """A stopped remote server: calls raise AsyncResultTimeout naming the call."""
    conn = deployed.connect(
        service=ClassicService, config={"sync_request_timeout": CALL_TIMEOUT}
    )
    getpid = conn.modules.os.getpid
    assert getpid() == deployed.remote_pid
    os.kill(deployed.remote_pid, signal.SIGSTOP)
    try:
        with pytest.raises(AsyncResultTimeout) as raised:
            getpid()
        with pytest.raises(AsyncResultTimeout) as raised_ping:
            conn.ping(timeout=CALL_TIMEOUT)
    finally:
        os.kill(deployed.remote_pid, signal.SIGCONT)
    message = str(raised.value)
    assert "CALL" in message
    assert f"timed out after {CALL_TIMEOUT} s" in message
    assert "PING" in str(raised_ping.value)
    # Resumed, the server answers on the same connection, and late replies are dropped.
    assert not conn.closed
    assert getpid() == deployed.remote_pid
    assert conn.modules.os.getppid() != deployed.remote_pid
    conn.close()
