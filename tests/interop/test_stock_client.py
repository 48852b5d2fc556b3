"""A stock rpyc 6.0.2 client against our server (rpyc_engine.server.ThreadedServer)."""

from __future__ import annotations

import gc
import os

import pytest

rpyc = pytest.importorskip("rpyc")
from rpyc.core import consts  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stock_conn(engine_server):
    conn = rpyc.connect("127.0.0.1", engine_server)
    yield conn
    conn.close()


def test_root_and_calls(stock_conn):
    root = stock_conn.root
    assert root.add(2, 3) == 5
    assert root.value == 42
    assert root.get_service_name() == "ENGINE"


def test_callback(stock_conn):
    assert stock_conn.root.call(lambda x, y: x * y, 6, 7) == 42


def test_nested_callback(stock_conn):
    root = stock_conn.root
    assert root.call(lambda: root.call(lambda: "inner")) == "inner"


def test_exception_with_remote_traceback(stock_conn):
    with pytest.raises(ValueError) as info:
        stock_conn.root.fail("bad input")
    text = str(info.value)
    assert "bad input" in text
    assert "Remote Traceback (1)" in text
    assert "exposed_fail" in text


def test_callback_exception_comes_back(stock_conn):
    def callback():
        raise KeyError("client side")

    with pytest.raises(KeyError) as info:
        stock_conn.root.call(callback)
    assert "client side" in str(info.value)


def test_list_and_iteration(stock_conn):
    remote = stock_conn.root.make_list(5)
    assert isinstance(remote, list)
    assert len(remote) == 5
    assert remote[3] == 3
    assert 4 in remote
    assert list(remote) == [0, 1, 2, 3, 4]
    assert list(stock_conn.root.counter(3)) == [0, 1, 2]


def test_context_manager(stock_conn):
    root = stock_conn.root
    with root.recorder() as recorder:
        pass
    assert recorder.events() == ("enter", ("exit", None))
    with pytest.raises(ZeroDivisionError):
        with root.recorder() as recorder:
            1 / 0
    assert recorder.events() == ("enter", ("exit", "ZeroDivisionError"))
    with root.recorder(True) as recorder:
        raise ValueError("suppressed")
    assert recorder.events()[-1] == ("exit", "ValueError")


def test_large_payload(stock_conn):
    data = os.urandom(2 * 1024 * 1024)
    assert stock_conn.root.echo(data) == data
    assert len(stock_conn.root.blob(4 * 1024 * 1024)) == 4 * 1024 * 1024


def test_releases(stock_conn):
    root = stock_conn.root
    baseline = root.export_count()
    proxies = [root.make_list(2) for _ in range(100)]
    assert root.export_count() >= baseline + 100
    del proxies
    gc.collect()
    stock_conn.ping()
    assert root.export_count() == baseline


def test_restricted_object(stock_conn):
    point = stock_conn.root.restricted_point()
    assert point.x == 1
    with pytest.raises(AttributeError):
        point.y
    with pytest.raises(AttributeError):
        point.x = 5


def test_cmp_operator_is_checked(stock_conn):
    root = stock_conn.root
    with pytest.raises(AttributeError, match="cannot access '__getattribute__'"):
        stock_conn.sync_request(consts.HANDLE_CMP, root, 1, "__getattribute__")


def test_private_and_setattr_refused(stock_conn):
    root = stock_conn.root
    with pytest.raises(AttributeError, match="cannot access '_conn'"):
        root._conn
    with pytest.raises(AttributeError, match="access denied"):
        root.value = 5


def test_instancecheck_answered_by_our_server(stock_conn):
    # Different class ids, so the stock client sends INSTANCECHECK; a stock server would
    # answer False for user classes, ours checks the real objects.
    root = stock_conn.root
    assert isinstance(root.square(), root.Shape)
    assert not isinstance(root.make_list(1), root.Shape)
