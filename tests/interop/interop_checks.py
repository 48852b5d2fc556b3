"""Checks shared by both interop directions; each takes a connection to the peer.

The stock client and our client expose the same surface (``root``, ``ping``), so the same
check runs against our server from a stock client and against a stock server from ours.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest


def check_calls(conn: Any, service_name: str) -> None:
    root = conn.root
    assert root.add(2, 3) == 5
    assert root.value == 42
    assert root.get_service_name() == service_name


def check_callbacks(conn: Any) -> None:
    root = conn.root
    assert root.call(lambda x, y: x * y, 6, 7) == 42
    assert root.call(lambda: root.call(lambda: "inner")) == "inner"


def check_remote_exception(conn: Any) -> None:
    with pytest.raises(ValueError) as info:
        conn.root.fail("bad input")
    text = str(info.value)
    assert "bad input" in text
    assert "Remote Traceback (1)" in text
    assert "exposed_fail" in text


def check_callback_exception(conn: Any) -> None:
    def callback() -> None:
        raise KeyError("raised by the callback")

    with pytest.raises(KeyError) as info:
        conn.root.call(callback)
    assert "raised by the callback" in str(info.value)


def check_list_and_iteration(conn: Any) -> None:
    remote = conn.root.make_list(5)
    assert isinstance(remote, list)
    assert len(remote) == 5
    assert remote[3] == 3
    assert 4 in remote
    assert list(remote) == [0, 1, 2, 3, 4]
    assert list(conn.root.counter(3)) == [0, 1, 2]


def check_context_manager(conn: Any) -> None:
    root = conn.root
    with root.recorder() as recorder:
        pass
    assert recorder.events() == ("enter", ("exit", None))
    with root.recorder(True) as recorder:
        raise ValueError("suppressed by the remote __exit__")
    assert recorder.events()[0] == "enter"
    assert recorder.events()[1][0] == "exit"


def check_large_payload(conn: Any) -> None:
    data = os.urandom(2 * 1024 * 1024)
    assert conn.root.echo(data) == data
    assert len(conn.root.blob(4 * 1024 * 1024)) == 4 * 1024 * 1024


def check_releases(conn: Any) -> None:
    root = conn.root
    baseline = root.export_count()
    proxies = [root.make_list(2) for _ in range(100)]
    assert root.export_count() >= baseline + 100
    del proxies
    gc.collect()
    conn.ping()
    assert root.export_count() == baseline


# The checks both directions run, parametrized in each test module.
SHARED = [
    check_callbacks,
    check_remote_exception,
    check_callback_exception,
    check_list_and_iteration,
    check_context_manager,
    check_large_payload,
    check_releases,
]


def check_id(check: Any) -> str:
    """Return the test id of a check: its name without the ``check_`` prefix."""
    return check.__name__[len("check_") :]
