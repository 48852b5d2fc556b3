"""ExplorerService over a real engine connection on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from rpyc_engine.factory import connect
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.explorer import ExplorerService
from rpyc_engine.services.explorer_methods import ExplorerMethods

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server():
    srv = ThreadedServer(ExplorerService, hostname="127.0.0.1", port=0)
    srv.start_in_thread()
    yield srv
    srv.close()


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_service_name_and_plain_method_names(server):
    conn = connect("127.0.0.1", server.port)
    try:
        assert conn.root.get_service_name() == "EXPLORER"
        exposed = [
            name for name in vars(ExplorerMethods) if name.startswith("exposed_")
        ]
        for name in exposed:
            assert callable(getattr(conn.root, name[len("exposed_") :]))
    finally:
        conn.close()


def test_console_shares_classic_namespace(server):
    conn = connect("127.0.0.1", server.port)
    try:
        conn.root.execute("shared = 'from execute'")
        run_id = conn.root.console_run("shared")
        deadline = time.monotonic() + 10
        while True:
            _, done, result, _ = conn.root.console_poll(run_id, 0.5)
            if done or time.monotonic() > deadline:
                break
        assert result == "'from execute'"
    finally:
        conn.close()


def test_disconnect_aborts_uploads_and_runs(server, tmp_path):
    conn = connect("127.0.0.1", server.port)
    upload_id, error = conn.root.upload_open(str(tmp_path / "target"))
    assert error is None
    assert conn.root.upload_write(upload_id, 0, b"partial") is None
    assert len(list(tmp_path.iterdir())) == 1
    run_id = conn.root.console_run("import threading\nwhile True: pass")
    assert run_id == 1
    wait_for(lambda: any(t.name == "console-run-1" for t in threading.enumerate()))
    conn.close()
    wait_for(lambda: list(tmp_path.iterdir()) == [])
    wait_for(lambda: not any(t.name == "console-run-1" for t in threading.enumerate()))
