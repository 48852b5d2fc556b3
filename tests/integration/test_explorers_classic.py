"""The explorers on a stock rpyc 6.0.2 classic server, which has no ExplorerService.

ClassicCalls sends the explorer helpers with ``execute`` on the first call; after that
each page is one call, as on our own service. Stock rpyc appears only in tests.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from explorer_support import FrameCounter
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.models.classic_calls import INSTANCE_NAME, ClassicCalls
from rpyc_explorer.session.remote import RemoteSession

from rpyc_engine import classic

rpyc = pytest.importorskip("rpyc")
from rpyc.utils.server import ThreadedServer as StockThreadedServer  # noqa: E402


pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stock_classic_port():
    server = StockThreadedServer(rpyc.SlaveService, hostname="127.0.0.1", port=0)
    server._listen()  # stock listens only inside start(); listen first
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    yield server.port
    server.close()
    thread.join(10)


@pytest.fixture
def session(qloop, stock_classic_port):
    conn = classic.connect("127.0.0.1", stock_classic_port)
    remote = RemoteSession(Machine.this_computer(), conn, kind="classic")
    remote.frame_counter = FrameCounter(conn._driver.stream)
    yield remote
    qloop.run_until_complete(remote.close())


def test_classic_calls_list_a_directory(session, arun, tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).write_text(name)
    calls = ClassicCalls(session)
    entries, total, error = arun(calls.call("list_dir", str(tmp_path), 0, 500))
    assert error is None
    assert total == 2
    assert [entry[0] for entry in entries] == ["a", "b"]
    before = session.frame_counter.round_trips
    arun(calls.call("list_dir", str(tmp_path), 0, 500))
    assert session.frame_counter.round_trips - before == 1


def test_classic_calls_console_and_objects(session, arun):
    calls = ClassicCalls(session)
    run_id = arun(
        calls.call("console_run", "import os\nprint('hi')\nvalue = 41\nvalue + 1")
    )
    output, result = [], ""

    async def drain() -> None:
        nonlocal result
        while True:
            chunks, done, result_repr, _ = await calls.call("console_poll", run_id, 0.5)
            output.extend(chunks)
            if done:
                result = result_repr
                return

    arun(drain())
    assert output == [("stdout", "hi\n")]
    assert result == "42"
    assert int(arun(calls.call("server_info"))[0]) == os.getpid()
    rows, total, error = arun(calls.call("object_page", "console", (), 0, 500, 0, ""))
    assert error is None
    assert "value" in [row[0] for row in rows]
    assert INSTANCE_NAME not in [row[0] for row in rows]  # private names are hidden
    assert arun(calls.call("complete", "os.path.jo")) == (8, ("join",))


def test_classic_calls_reuse_installed_helpers(session, arun):
    first = ClassicCalls(session)
    arun(first.call("home"))
    second = ClassicCalls(session)
    assert arun(second.call("input_status", "def f():")) == "incomplete"
    namespace = session.conn.root.namespace
    assert namespace[INSTANCE_NAME] is not None
    assert "_rpyc_explorer_sources" not in namespace


def test_machine_tab_on_classic_server(qtbot, session, arun, app_dirs):
    from rpyc_explorer.views.machine_tab import MachineTab

    tab = MachineTab(session)
    qtbot.addWidget(tab)

    async def wait_home() -> None:
        while tab.files_pane.model.root_paths() == []:
            await asyncio.sleep(0.02)

    arun(wait_home())
    assert tab.files_pane.model.root_paths()[0] == os.path.expanduser("~")
    arun(tab.shutdown())
