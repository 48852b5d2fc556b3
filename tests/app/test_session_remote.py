"""RemoteSession against the engine's classic server on loopback."""

from __future__ import annotations

import threading

import pytest
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.session.remote import RemoteSession, detect_kind

import rpyc_engine
from rpyc_engine import classic


class _FakeDeployment:
    """Stands in for DeployedServer, which needs ssh or a subprocess to exist."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.closed_with: float | None = None

    def close(self, timeout: float = 10.0) -> list[str]:
        self.closed_with = timeout
        return self.problems


@pytest.fixture
def classic_server():
    server = rpyc_engine.ThreadedServer(rpyc_engine.SlaveService, port=0)
    server.start_in_thread()
    yield server
    server.close()


@pytest.fixture
def session(classic_server, qloop):
    conn = classic.connect("127.0.0.1", classic_server.port)
    machine = Machine.new("loopback", kind="rpyc", host="127.0.0.1")
    remote = RemoteSession(machine, conn, kind=detect_kind(conn))
    yield remote
    conn.close()


def test_detect_kind_classic(session):
    assert session.kind == "classic"


def test_call_runs_off_gui_thread(session, arun):
    main = threading.get_ident()
    result = arun(session.call("eval", "1 + 41"))
    assert result == 42
    remote_thread = arun(session.run(lambda: threading.get_ident()))
    assert remote_thread != main


def test_call_raises_remote_error(session, arun):
    with pytest.raises(ZeroDivisionError):
        arun(session.call("eval", "1 / 0"))


def test_close_emits_once_and_blocks_calls(session, arun, qtbot):
    reasons: list[str] = []
    session.closed.connect(reasons.append)
    problems = arun(session.close())
    arun(session.close())
    assert problems == []
    assert reasons == ["closed by user"]
    assert session.conn.closed
    with pytest.raises(RuntimeError, match="is closed"):
        arun(session.call("eval", "1"))


def test_close_reports_deployment_problems(classic_server, arun):
    conn = classic.connect("127.0.0.1", classic_server.port)
    deployment = _FakeDeployment(["process 1234 still running"])
    machine = Machine.new("deployed", kind="rpyc", host="127.0.0.1")
    session = RemoteSession(machine, conn, kind="classic", deployment=deployment)
    lines: list[str] = []
    session.log.connect(lines.append)

    problems = arun(session.close(timeout=3.0))

    assert problems == ["process 1234 still running"]
    assert deployment.closed_with == 3.0
    assert any("process 1234 still running" in line for line in lines)


def test_lost_connection_emits_closed(session, classic_server, arun):
    reasons: list[str] = []
    session.closed.connect(reasons.append)
    session.conn.close()
    with pytest.raises(Exception):  # noqa: B017 - any error type means "lost"
        arun(session.call("eval", "1"))
    assert len(reasons) == 1
    assert reasons[0].startswith("connection lost")
