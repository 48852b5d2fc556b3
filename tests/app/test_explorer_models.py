"""The files and objects tree models fed by a real ExplorerService over loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer_support import make_session, serve_explorer  # noqa: E402
from rpyc_explorer.models.files_model import COLUMNS, EntryRole, FilesModel, PathRole  # noqa: E402
from rpyc_explorer.models.objects_model import (  # noqa: E402
    SHOW_CALLABLES,
    ItemRole,
    ObjectsModel,
)
from rpyc_explorer.models.remote_calls import CachedCalls  # noqa: E402


@pytest.fixture
def session(qloop):
    with serve_explorer() as (conn, counter):
        remote = make_session(conn)
        remote.frame_counter = counter
        yield remote
        qloop.run_until_complete(remote.close())


async def load_all(model, index, timeout: float = 20.0) -> None:
    """Fetch pages of ``index`` until none are left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        node = model.node(index)
        if not node.loading and not model.has_more(index):
            return
        if not node.loading:
            model.fetch_next(index)
        assert loop.time() < deadline, "pages did not finish loading"
        await asyncio.sleep(0.01)


def child_names(model, index) -> list[str]:
    return [model.index(row, 0, index).data() for row in range(model.rowCount(index))]


def test_files_model_passes_model_tester(qtmodeltester, session, tmp_path, arun):
    # The tester fetches every branch it can, so the roots hold small, finite trees.
    for name in ("b.txt", "a.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner").write_text("x")
    (tmp_path.parent / f"{tmp_path.name}-empty").mkdir()
    model = FilesModel(session)
    model.set_roots([str(tmp_path), str(tmp_path.parent / f"{tmp_path.name}-empty")])
    qtmodeltester.check(model)
    top = model.index(0, 0)
    arun(load_all(model, top))
    assert child_names(model, top) == ["sub", "a.txt", "b.txt"]
    sub = model.index(0, 0, top)
    arun(load_all(model, sub))
    qtmodeltester.check(model)
    assert child_names(model, sub) == ["inner"]
    inner = model.index(0, 0, sub)
    assert inner.data(PathRole) == str(tmp_path / "sub" / "inner")
    assert model.index(0, 1, sub).data() == "1 B"
    assert model.index(0, 4, sub).data().startswith("-rw")
    assert model.columnCount() == len(COLUMNS)


def test_files_model_pages_and_loading_row(session, tmp_path, arun, qtmodeltester):
    for number in range(1200):
        (tmp_path / f"f{number:04d}").touch()
    model = FilesModel(session)
    model.page_size = 500
    model.set_roots([str(tmp_path)])
    top = model.index(0, 0)
    model.fetchMore(top)
    arun(asyncio.sleep(0.001))
    assert model.rowCount(top) == 1
    assert model.index(0, 0, top).data() == "loading…"
    arun(load_all(model, top))
    names = child_names(model, top)
    assert len(names) == 1200
    assert len(set(names)) == 1200
    assert model.pages_requested == 3
    qtmodeltester.check(model)


def test_files_model_later_pages_on_request(session, tmp_path, arun):
    for number in range(30):
        (tmp_path / f"f{number:02d}").touch()
    model = FilesModel(session)
    model.page_size = 10
    model.set_roots([str(tmp_path)])
    top = model.index(0, 0)
    assert model.canFetchMore(top)
    model.fetchMore(top)
    arun(wait_page(model, top))
    assert model.node(top).loaded_items() == 10
    assert model.has_more(top)
    # A view's relayout calls fetchMore again; only fetch_next loads later pages.
    assert not model.canFetchMore(top)
    model.fetchMore(top)
    assert model.pages_requested == 1
    assert model.fetch_next(top)
    assert not model.fetch_next(top)  # one page per branch in flight
    assert model.pages_requested == 2
    arun(wait_page(model, top))
    assert child_names(model, top) == [f"f{number:02d}" for number in range(20)]
    assert model.node(top).loaded_items() == 20


def test_files_model_error_row_in_place(session, tmp_path, arun):
    model = FilesModel(session)
    model.set_roots([str(tmp_path / "vanished")])
    top = model.index(0, 0)
    arun(load_all(model, top))
    assert model.rowCount(top) == 1
    text = model.index(0, 0, top).data()
    # The message only: codes such as "not-found" are for the program, not the user.
    assert text == f"⚠ No such file or directory: {tmp_path / 'vanished'}"
    assert not model.canFetchMore(top)
    assert not model.has_more(top)
    assert not model.fetch_next(top)


def test_files_model_sort_filter_hidden(session, tmp_path, arun):
    (tmp_path / "small").write_bytes(b"1")
    (tmp_path / "large").write_bytes(b"1" * 100)
    (tmp_path / ".secret").write_text("s")
    model = FilesModel(session)
    model.set_roots([str(tmp_path)])
    top = model.index(0, 0)
    model.sort(1, Qt.DescendingOrder)
    arun(load_all(model, top))
    assert child_names(model, top) == ["large", "small"]
    model.set_view_options(show_hidden=True, sort_key="name", pattern="")
    arun(load_all(model, top))
    assert child_names(model, top) == [".secret", "large", "small"]
    model.set_view_options(show_hidden=True, sort_key="name", pattern="SMA")
    arun(load_all(model, top))
    assert child_names(model, top) == ["small"]
    assert model.index(0, 0, top).data(EntryRole)[1] == "file"


def test_files_model_release_drops_children(session, tmp_path, arun):
    (tmp_path / "x").touch()
    model = FilesModel(session)
    model.set_roots([str(tmp_path)])
    top = model.index(0, 0)
    arun(load_all(model, top))
    assert model.rowCount(top) == 1
    model.release(top)
    assert model.rowCount(top) == 0
    assert model.canFetchMore(top)


def test_objects_model_passes_model_tester(qtmodeltester, session, arun):
    # The tester fetches every branch it can, and an object graph has cycles, so the
    # model shows no modules and a console namespace of plain data only.
    code = "data = {'numbers': [1, 2, 3], 'nested': {'text': 'x', 'pair': (4, 5)}}"
    arun(session.run(session.conn.root.execute, code))
    model = ObjectsModel(session)
    model.set_options(flags=0, module_filter="no-module-has-this-name")
    qtmodeltester.check(model)
    console = model.top_index("console")
    arun(load_all(model, console))
    assert child_names(model, console) == ["data"]
    data = model.index(0, 0, console)
    arun(load_all(model, data))
    assert child_names(model, data) == ["nested", "numbers"]
    numbers = model.index(1, 0, data)
    arun(load_all(model, numbers))
    assert child_names(model, numbers) == ["[0]", "[1]", "[2]"]
    assert model.index(2, 2, numbers).data() == "3"


def test_objects_model_module_children(session, arun):
    model = ObjectsModel(session)
    model.set_options(flags=SHOW_CALLABLES, module_filter="os")
    modules = model.top_index("modules")
    arun(load_all(model, modules))
    names = child_names(model, modules)
    assert "os" in names
    os_index = model.index(names.index("os"), 0, modules)
    arun(load_all(model, os_index))
    os_names = child_names(model, os_index)
    assert "getcwd" in os_names
    item = model.index(os_names.index("getcwd"), 0, os_index).data(ItemRole)
    assert item.path == (("key", "os"), ("attr", "getcwd"))
    assert item.dotted_name() == "os.getcwd"
    assert item.callable is True


def test_objects_model_page_is_one_call(session, arun):
    model = ObjectsModel(session)
    modules = model.top_index("modules")
    arun(load_all(model, modules))
    before = session.frame_counter.round_trips
    model.reset_children()
    arun(load_all(model, modules))
    pages = model.pages_requested - 1
    assert pages >= 1
    assert session.frame_counter.round_trips - before <= 3 * pages


def test_objects_model_console_namespace(session, arun):
    arun(session.run(session.conn.root.execute, "answer = 42"))
    model = ObjectsModel(session)
    console = model.top_index("console")
    arun(load_all(model, console))
    names = child_names(model, console)
    assert "answer" in names
    assert model.index(names.index("answer"), 2, console).data() == "42"
    assert os.getpid() == arun(session.call("server_info"))[0]


def test_cached_calls_one_frame_per_page(session, tmp_path, arun):
    for number in range(1500):
        (tmp_path / f"f{number:04d}").touch()
    calls = CachedCalls(session)
    model = FilesModel(calls)
    model.set_roots([str(tmp_path)])
    top = model.index(0, 0)
    counter = session.frame_counter
    trips_per_page = []
    while model.has_more(top):
        before = counter.round_trips
        model.fetch_next(top)
        arun(wait_page(model, top))
        trips_per_page.append(counter.round_trips - before)
    assert model.rowCount(top) == 1500
    # The first page also fetches the root and looks the method up once (GETROOT,
    # GETATTR and INSPECT of the proxy's class); every later page is one CALL.
    assert trips_per_page[0] <= 4
    assert trips_per_page[1:] == [1, 1]
    calls.release()
    assert calls.machine is session.machine


async def wait_page(model, index, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await asyncio.sleep(0)
    while model.node(index).loading:
        assert loop.time() < deadline, "the page did not arrive"
        await asyncio.sleep(0.005)
