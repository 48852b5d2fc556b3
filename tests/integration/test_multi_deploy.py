"""MultiServerDeployment against the throwaway sshd: parallel deploys, per-host errors."""

from __future__ import annotations

import functools

import pytest
from deploy_checks import process_gone
from plumbum import SshMachine

from rpyc_engine.deploy import DeployedServer, HostFailure, MultiServerDeployment

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(90)]


@pytest.fixture
def machines(sshd_server):
    opened = [sshd_server.ssh_machine() for _ in range(3)]
    yield opened
    for machine in opened:
        machine.close()


def test_three_hosts_connect(machines, sshd_server):
    """Three SshMachines get three servers, and every connection replies."""
    with MultiServerDeployment(machines) as deployment:
        assert len(deployment) == 3
        assert all(isinstance(slot, DeployedServer) for slot in deployment)
        connections = deployment.classic_connect_all()
        pids = [conn.modules.os.getpid() for conn in connections]
        assert pids == [server.remote_pid for server in deployment.servers]
        assert len(set(pids)) == 3
        assert {conn.modules.os.getuid() for conn in connections} == {sshd_server.uid}
    assert all(process_gone(pid, within=0.5) for pid in pids)


def test_broken_host_gets_own_error(machines, sshd_server):
    """A host on a wrong port yields a HostFailure while the others connect."""
    broken = functools.partial(
        SshMachine,
        sshd_server.host,
        user=sshd_server.user,
        port=1,
        keyfile=sshd_server.key_path,
        ssh_opts=sshd_server.ssh_options(),
    )
    deployment = MultiServerDeployment([machines[0], broken, machines[1]])
    try:
        assert len(deployment) == 3
        failure = deployment[1]
        assert isinstance(failure, HostFailure)
        assert failure.phase == "connecting"
        assert "port=1" in failure.host
        assert deployment.failures == [failure]
        connections = deployment.connect_all()
        assert connections[1] is failure
        for conn in (connections[0], connections[2]):
            conn.ping()
    finally:
        leftovers = deployment.close()
    assert leftovers == ()


def test_progress_names_the_host(machines):
    """The multi progress callback receives the host alias first."""
    seen = set()
    deployment = MultiServerDeployment(
        machines[:2],
        progress=lambda host, phase, fraction, detail: seen.add((host, phase)),
    )
    deployment.close()
    assert (str(machines[0]), "handshake") in seen
    assert len({host for host, _ in seen}) == 1  # both machines have the same alias
