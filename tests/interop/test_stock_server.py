"""Our client against stock rpyc 6.0.2 servers: a custom Service and classic SlaveService."""

from __future__ import annotations

import gc
import os

import pytest

pytest.importorskip("rpyc")

from rpyc_engine import connect  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def conn(stock_server):
    conn = connect("127.0.0.1", stock_server)
    yield conn
    conn.close()


def test_root_and_calls(conn):
    root = conn.root
    assert root.add(2, 3) == 5
    assert root.value == 42
    assert root.get_service_name() == "STOCK"


def test_callback(conn):
    assert conn.root.call(lambda x, y: x * y, 6, 7) == 42


def test_nested_callback(conn):
    root = conn.root
    assert root.call(lambda: root.call(lambda: "inner")) == "inner"


def test_exception_with_remote_traceback(conn):
    with pytest.raises(ValueError) as info:
        conn.root.fail("bad input")
    text = str(info.value)
    assert "bad input" in text
    assert "Remote Traceback (1)" in text
    assert "exposed_fail" in text


def test_callback_exception_comes_back(conn):
    def callback():
        raise KeyError("our side")

    with pytest.raises(KeyError) as info:
        conn.root.call(callback)
    assert "our side" in str(info.value)


def test_list_and_iteration(conn):
    remote = conn.root.make_list(5)
    assert isinstance(remote, list)
    assert len(remote) == 5
    assert remote[3] == 3
    assert 4 in remote
    assert list(remote) == [0, 1, 2, 3, 4]
    assert list(conn.root.counter(3)) == [0, 1, 2]


def test_context_manager(conn):
    root = conn.root
    with root.recorder() as recorder:
        pass
    assert recorder.events() == ("enter", ("exit", None))
    with root.recorder(True):
        raise ValueError("suppressed by the stock server's __exit__")


def test_large_payload(conn):
    data = os.urandom(2 * 1024 * 1024)
    assert conn.root.echo(data) == data
    assert len(conn.root.blob(4 * 1024 * 1024)) == 4 * 1024 * 1024


def test_releases(conn):
    root = conn.root
    baseline = root.export_count()
    proxies = [root.make_list(2) for _ in range(100)]
    assert root.export_count() >= baseline + 100
    del proxies
    gc.collect()
    conn.ping()
    assert root.export_count() == baseline


def test_classic_slave_service(stock_classic_server):
    conn = connect("127.0.0.1", stock_classic_server)
    try:
        root = conn.root
        assert root.getmodule("os").getpid() == os.getpid()
        assert root.eval("1 + 1") == 2
        root.execute("x = 21")
        assert root.eval("x * 2") == 42
        with pytest.raises(ZeroDivisionError) as info:
            root.eval("1 / 0")
        assert "Traceback" in str(info.value)
        path = root.getmodule("os.path")
        assert path.join("a", "b") == os.path.join("a", "b")
    finally:
        conn.close()
