"""Services for the interop tests: one served by our engine, one by stock rpyc 6.0.2."""

from __future__ import annotations

from typing import Any, List

import rpyc

from rpyc_engine import Service, restricted


class Recorder:
    """A context manager that records its enter and exit calls."""

    def __init__(self, suppress: bool = False) -> None:
        self.events: List[Any] = []
        self.suppress = suppress

    def __enter__(self) -> Recorder:
        self.events.append("enter")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        # A stock client sends the exception class as a reference; our server rebuilds
        # builtin classes, so the name is readable here.
        self.events.append(("exit", getattr(exc_type, "__name__", None)))
        return self.suppress

    def exposed_events(self) -> tuple:
        return tuple(self.events)


class Point:
    """A plain object reached through ``restricted``."""

    def __init__(self) -> None:
        self.x = 1
        self.y = 2


def _common_methods(cls: type) -> type:
    """Add the methods both services share (ours and stock's)."""

    def exposed_add(self: Any, a: Any, b: Any) -> Any:
        return a + b

    def exposed_echo(self: Any, value: Any) -> Any:
        return value

    def exposed_call(self: Any, func: Any, *args: Any) -> Any:
        return func(*args)

    def exposed_fail(self: Any, message: str) -> None:
        raise ValueError(message)

    def exposed_make_list(self: Any, count: int) -> list:
        return list(range(count))

    def exposed_counter(self: Any, count: int) -> Any:
        return iter(range(count))

    def exposed_recorder(self: Any, suppress: bool = False) -> Recorder:
        self.recorder = Recorder(suppress)
        return self.recorder

    def exposed_blob(self: Any, size: int) -> bytes:
        return b"0123456789abcdef" * (size // 16)

    for func in (
        exposed_add,
        exposed_echo,
        exposed_call,
        exposed_fail,
        exposed_make_list,
        exposed_counter,
        exposed_recorder,
        exposed_blob,
    ):
        setattr(cls, func.__name__, func)
    return cls


class Shape:
    pass


class Square(Shape):
    pass


@_common_methods
class EngineService(Service):
    """Served by rpyc_engine for stock clients."""

    exposed_value = 42
    exposed_Shape = Shape

    def exposed_square(self) -> Square:
        return Square()

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    def exposed_export_count(self) -> int:
        return len(self.conn._exports)

    def exposed_restricted_point(self) -> Any:
        return restricted(Point(), ["x"], ())


@_common_methods
class StockService(rpyc.Service):
    """Served by stock rpyc for our client."""

    exposed_value = 42

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    def exposed_export_count(self) -> int:
        # Stock's export table (a test-only peek at rpyc 6.0.2 internals).
        return len(self.conn._local_objects._dict)
