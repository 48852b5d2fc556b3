"""Failed, cancelled and timed-out deploys: clear errors and nothing left running."""

from __future__ import annotations

import functools
import os
import re
import threading

import pytest
from deploy_checks import deploy_processes, process_gone
from plumbum import SshMachine, local
from sshd import descendants

from rpyc_engine.deploy import (
    DeployCancelled,
    DeployedServer,
    DeployError,
    NoPythonError,
    TimeoutExpired,
)
from rpyc_engine.deploy.probe import CANDIDATES

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def machine(sshd_server):
    machine = sshd_server.ssh_machine()
    yield machine
    machine.close()


def _ssh_children() -> set:
    found = set()
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "ssh":
                    found.add(pid)
        except OSError:
            continue
    return found


@pytest.mark.ssh
def test_override_not_found(machine):
    """A nonexistent interpreter override names the override and the fix."""
    with pytest.raises(NoPythonError) as raised:
        DeployedServer(machine, python_executable="/nonexistent/python3")
    error = raised.value
    assert error.phase == "finding-python"
    assert "'/nonexistent/python3'" in str(error)
    assert "not found" in str(error)
    assert "interpreter override" in str(error)
    assert error.host == str(machine)


@pytest.mark.ssh
def test_no_python_on_path(machine):
    """With no interpreter on PATH, the error lists every name it tried."""
    with machine.env(PATH="/nonexistent"):
        with pytest.raises(NoPythonError) as raised:
            DeployedServer(machine)
    message = str(raised.value)
    assert [candidate.name for candidate in raised.value.candidates] == list(CANDIDATES)
    assert "no Python >= 3.8 found" in message
    assert "python3.8: not found" in message
    assert "set the interpreter override" in message


def test_old_python_is_reported(tmp_path):
    """An interpreter older than 3.8 is listed with its version."""
    fake = tmp_path / "python2"
    fake.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 2.7.18"\nexit 1\n')
    fake.chmod(0o755)
    with pytest.raises(NoPythonError) as raised:
        DeployedServer(local, python_executable=str(fake))
    assert f"{fake} -> {fake} (Python 2.7.18)" in str(raised.value)


def test_unknown_service():
    """A service that does not import fails in phase 'starting' and names it."""
    with pytest.raises(DeployError) as raised:
        DeployedServer(local, service="rpyc_engine.services.nowhere.Missing")
    assert raised.value.phase == "starting"
    assert "'rpyc_engine.services.nowhere.Missing'" in str(raised.value)
    assert "No module named 'rpyc_engine.services.nowhere'" in str(raised.value)


def test_start_timeout_kills_child(tmp_path):
    """A server that never starts hits connect_timeout; its local process is ended."""
    fake = tmp_path / "python3"
    fake.write_text(
        f'#!/bin/sh\n[ "$1" = -S ] && exit 0\necho $$ > {tmp_path}/pid\nexec sleep 60\n'
    )
    fake.chmod(0o755)
    with pytest.raises(TimeoutExpired) as raised:
        DeployedServer(local, python_executable=str(fake), connect_timeout=1)
    assert raised.value.phase in ("uploading", "starting")
    assert "did not start within 1 s" in str(raised.value)
    pid = int((tmp_path / "pid").read_text())
    assert process_gone(pid, within=1)


@pytest.mark.ssh
@pytest.mark.parametrize("phase", ["uploading", "starting", "handshake"])
def test_cancel_half_way_leaves_nothing(private_sshd, phase):
    """A deploy cancelled in each phase raises DeployCancelled and leaves no process."""
    machine = private_sshd.ssh_machine()
    before_remote = deploy_processes(private_sshd.uid)
    before_local = _ssh_children()
    cancel = threading.Event()
    details = []

    def progress(seen: str, fraction: object, detail: str) -> None:
        if seen == phase:
            details.append(detail)
            cancel.set()

    try:
        with pytest.raises(DeployCancelled) as raised:
            DeployedServer(machine, progress=progress, cancel_event=cancel)
    finally:
        machine.close()
    assert raised.value.phase == phase
    assert _ssh_children() - before_local == set()
    assert deploy_processes(private_sshd.uid) == before_remote
    if phase == "handshake":
        remote_pid = int(re.search(r"pid (\d+)", details[0]).group(1))
        assert process_gone(remote_pid, within=0)


@pytest.mark.ssh
def test_close_during_init_cancels(machine, sshd_server):
    """close() from another thread while __init__ runs cancels that deploy."""
    before_local = _ssh_children()
    server = DeployedServer.__new__(DeployedServer)
    closer_results = []

    def progress(phase: str, fraction: object, detail: str) -> None:
        if phase == "starting" and not closer_results:
            closer_results.append(None)
            closer = threading.Thread(
                target=lambda: closer_results.append(server.close())
            )
            closer.start()
            closer_results.append(closer)

    with pytest.raises(DeployCancelled):
        server.__init__(machine, progress=progress)
    closer_results[1].join(timeout=15)
    assert not closer_results[1].is_alive()
    assert closer_results[2] == ()
    assert server.closed
    assert _ssh_children() - before_local == set()


@pytest.mark.ssh
def test_unreachable_port_fails_in_connecting(sshd_server):
    """A machine factory that cannot connect fails in phase 'connecting'."""
    factory = functools.partial(
        SshMachine,
        sshd_server.host,
        user=sshd_server.user,
        port=1,
        keyfile=sshd_server.key_path,
        ssh_opts=sshd_server.ssh_options(),
    )
    with pytest.raises(DeployError) as raised:
        DeployedServer(factory)
    assert raised.value.phase == "connecting"
    assert "port=1" in raised.value.host
    assert "Check the host name, port, user and credentials" in str(raised.value)


@pytest.mark.ssh
def test_factory_machine_is_closed(sshd_server):
    """A machine the deployment created itself is closed by close()."""
    before = _ssh_children()
    server = DeployedServer(sshd_server.ssh_machine)
    assert server.alias.startswith("ssh://")
    # The machine's shell session and the deploy itself:
    assert len(_ssh_children() - before) == 2
    server.close()
    assert _ssh_children() - before == set()
