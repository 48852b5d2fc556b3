"""Services and helper classes served by the engine and interop tests."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List

from rpyc_engine import Service, exposed, restricted


class CustomError(Exception):
    """An exception class the client side does not know by default."""


class Box:
    """A plain class exposed to the peer (constructor, instances, isinstance)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def exposed_get(self) -> Any:
        return self.value

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Box) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Box({self.value!r})"

    def __str__(self) -> str:
        return f"box of {self.value}"


class SubBox(Box):
    pass


class Context:
    """A context manager that records how it was entered and left."""

    def __init__(self, suppress: bool = False) -> None:
        self.events: List[Any] = []
        self.suppress = suppress

    def __enter__(self) -> Context:
        self.events.append("enter")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.events.append(("exit", exc_type.__name__ if exc_type else None))
        return self.suppress

    def exposed_events(self) -> tuple:
        return tuple(self.events)


class Probe:
    """An object with a property whose reads are counted."""

    def __init__(self) -> None:
        self.reads = 0
        self.foo = "plain foo"

    @property
    def exposed_foo(self) -> str:
        self.reads += 1
        return "exposed foo"


class CalcService(Service):
    """The service most engine and interop tests talk to."""

    value = 42
    exposed_value = 42
    exposed_Box = Box
    exposed_SubBox = SubBox

    def __init__(self) -> None:
        self.kept: List[Any] = []
        self.secret = "not reachable"
        self._private = "not reachable either"
        self.last_context: Any = None
        self.probe = Probe()
        self.conn: Any = None
        self.event = threading.Event()

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    def exposed_call_client_root(self, name: str, *args: Any) -> Any:
        """Call ``name`` on the client's root from inside this request."""
        return getattr(self.conn.root, name)(*args)

    def exposed_add(self, a: Any, b: Any) -> Any:
        return a + b

    def exposed_echo(self, value: Any) -> Any:
        return value

    def exposed_call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def exposed_nested(self, func: Callable[[int], Any], depth: int) -> Any:
        """Call ``func(depth - 1)``; the peer's func calls back into ``nested``."""
        if depth <= 0:
            return "bottom"
        return ("level", depth, func(depth - 1))

    def exposed_fail(self, message: str) -> None:
        raise ValueError(message)

    def exposed_fail_custom(self, message: str) -> None:
        raise CustomError(message)

    def exposed_make_list(self, count: int) -> list:
        return list(range(count))

    def exposed_make_dict(self) -> dict:
        return {"a": 1, "b": 2}

    def exposed_make_box(self, value: Any) -> Box:
        return Box(value)

    def exposed_make_subbox(self, value: Any) -> SubBox:
        return SubBox(value)

    def exposed_mixed_tuple(self) -> tuple:
        return (1, [2], "three")

    def exposed_blob(self, size: int) -> bytes:
        return bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    def exposed_length(self, data: Any) -> int:
        return len(data)

    def exposed_context(self, suppress: bool = False) -> Context:
        self.last_context = Context(suppress)
        return self.last_context

    def exposed_counter(self, count: int) -> Any:
        return iter(range(count))

    def exposed_keep(self, obj: Any) -> None:
        self.kept.append(obj)

    def exposed_drop(self) -> None:
        self.kept.clear()

    def exposed_call_kept(self) -> list:
        return [func() for func in self.kept]

    def exposed_sleep(self, seconds: float, value: Any = None) -> Any:
        time.sleep(seconds)
        return value

    def exposed_wait_event(self, timeout: float) -> bool:
        return self.event.wait(timeout)

    def exposed_set_event(self) -> None:
        self.event.set()

    def exposed_thread_name(self) -> str:
        return threading.current_thread().name

    def exposed_restricted_box(self, value: Any) -> Any:
        return restricted(Box(value), ["value"], ["value"])

    def exposed_restricted_func(self, allow_call: bool) -> Any:
        attrs = ["__call__", "__name__"] if allow_call else ["__name__"]
        return restricted(lambda: "called", attrs, ())

    def exposed_get_probe(self) -> Probe:
        return self.probe

    @exposed
    def multiply(self, a: Any, b: Any) -> Any:
        return a * b

    def not_exposed(self) -> str:
        return "should not be reachable"
