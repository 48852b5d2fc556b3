"""A stock rpyc 6.0.2 client against our server (rpyc_engine.server.ThreadedServer)."""

from __future__ import annotations

import pytest

rpyc = pytest.importorskip("rpyc")
import interop_checks  # noqa: E402
from rpyc.core import consts  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stock_conn(engine_server):
    conn = rpyc.connect("127.0.0.1", engine_server)
    yield conn
    conn.close()


@pytest.mark.parametrize("check", interop_checks.SHARED, ids=interop_checks.check_id)
def test_shared_behaviour(check, stock_conn):
    check(stock_conn)


def test_calls(stock_conn):
    interop_checks.check_calls(stock_conn, "ENGINE")


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


def test_exit_sees_builtin_exception_class(stock_conn):
    # A stock client sends only the exception class, by reference; our server rebuilds
    # builtin classes by name, so the remote __exit__ sees the real class.
    with pytest.raises(ZeroDivisionError):
        with stock_conn.root.recorder() as recorder:
            1 / 0
    assert recorder.events() == ("enter", ("exit", "ZeroDivisionError"))
