"""Per-machine logging: records that name the machine first and reach the log pane."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

LineSink = Callable[[str], None]


class MachineLogAdapter(logging.LoggerAdapter):
    """A logger adapter that prefixes the machine name and copies lines to a sink.

    Records go to the wrapped logger as usual ("<machine>: <message>"). Records at
    `sink_level` or above are also formatted and passed to `sink`, which the session
    objects connect to their `log` signal. Messages must never carry a secret: wrap
    secrets in `credentials.Secret`, whose str() is redacted.
    """

    def __init__(
        self,
        logger: logging.Logger,
        machine_name: str,
        sink: LineSink | None = None,
        sink_level: int = logging.INFO,
    ) -> None:
        super().__init__(logger, {"machine": machine_name})
        self.machine_name = machine_name
        self.sink = sink
        self.sink_level = sink_level

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("machine", self.machine_name)
        kwargs["extra"] = extra
        return f"{self.machine_name}: {msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        if self.sink is not None and level >= self.sink_level:
            text = str(msg) % args if args else str(msg)
            self.sink(f"{logging.getLevelName(level)} {text}")


def loop_sink(emit: Callable[[str], None]) -> LineSink:
    """Wrap a signal's `emit` so that calls from worker threads go through the loop.

    Qt signals are emitted only on the thread that created the sink (the GUI
    thread, where the asyncio loop runs); other threads hand the line to the
    loop with `call_soon_threadsafe`. Lines that arrive after the loop closed
    are dropped, because their receivers may already be gone. Without a running
    loop at creation, every call emits directly.
    """
    owner = threading.get_ident()
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    def sink(line: str) -> None:
        if threading.get_ident() == owner or loop is None:
            emit(line)
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(emit, line)
            except RuntimeError:
                pass  # The loop closed between the check and the call.

    return sink


def weak_emitter(owner: Any, signal_name: str, *leading: Any) -> LineSink:
    """Return `line -> owner.<signal_name>.emit(*leading, line)` holding `owner` weakly.

    A strong reference from a logger sink back to its QObject would put the
    object in a reference cycle. Python's cycle collector may then delete it on
    whatever thread happens to run the collection, which crashes Qt.
    """
    ref = weakref.ref(owner)

    def emit(line: str) -> None:
        target = ref()
        if target is not None:
            getattr(target, signal_name).emit(*leading, line)

    return emit


def weak_method(method: Callable[..., Any]) -> Callable[..., Any]:
    """Return a callable that calls the bound `method` while its object lives.

    Used for callbacks that threads and deployments keep, for the reason given
    in `weak_emitter`; calls after the object is gone do nothing.
    """
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        target = ref()
        return None if target is None else target(*args)

    return call
