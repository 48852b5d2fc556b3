"""Fixtures for interop tests: our server and stock rpyc 6.0.2 servers on loopback."""

from __future__ import annotations

import threading

import pytest

rpyc = pytest.importorskip("rpyc")
from interop_services import EngineService, StockService  # noqa: E402
from rpyc.utils.server import ThreadedServer as StockThreadedServer  # noqa: E402

from rpyc_engine.server import ThreadedServer  # noqa: E402


@pytest.fixture
def engine_server():
    """Our ThreadedServer serving EngineService on 127.0.0.1; yields the port."""
    server = ThreadedServer(EngineService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    yield server.port
    server.close()


def _start_stock(service, config=None):
    server = StockThreadedServer(
        service, hostname="127.0.0.1", port=0, protocol_config=config or {}
    )
    # Stock listens only inside start(); listening first avoids a refused connect.
    server._listen()
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def stock_server():
    """Stock rpyc's ThreadedServer serving StockService; yields the port."""
    server, thread = _start_stock(StockService)
    yield server.port
    server.close()
    thread.join(10)


@pytest.fixture
def stock_classic_server():
    """Stock rpyc's ThreadedServer serving its classic SlaveService; yields the port."""
    server, thread = _start_stock(rpyc.SlaveService)
    yield server.port
    server.close()
    thread.join(10)
