"""Our client against stock rpyc 6.0.2 servers: a custom Service and classic SlaveService."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("rpyc")

import interop_checks  # noqa: E402

from rpyc_engine import connect  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def conn(stock_server):
    conn = connect("127.0.0.1", stock_server)
    yield conn
    conn.close()


@pytest.mark.parametrize("check", interop_checks.SHARED, ids=interop_checks.check_id)
def test_shared_behaviour(check, conn):
    check(conn)


def test_calls(conn):
    interop_checks.check_calls(conn, "STOCK")


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
