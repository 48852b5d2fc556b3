"""The pending result of a request, and ``async_`` for calling proxies without waiting.

An ``AsyncResult`` can be waited for from any thread (``wait``, ``value``) or awaited on
any asyncio loop (``await result``); ``timed(proxy, seconds)`` makes calls whose results
expire. A result that expires raises ``AsyncResultTimeout`` naming the request, e.g.
``CALLATTR 'slow' on <netref __main__.MyService> timed out after 0.5 s``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, List, Optional, Tuple

from rpyc_engine.protocol.errors import AsyncResultTimeout, ConnectionClosed

if TYPE_CHECKING:
    from rpyc_engine.connection import Connection

logger = logging.getLogger(__name__)

__all__ = ["AsyncResult", "AsyncProxy", "async_", "describe_request", "timed"]

# Handlers whose second argument is an attribute name, shown in timeout messages.
_NAMED_HANDLERS = frozenset({4, 5, 6, 8})  # GETATTR, DELATTR, SETATTR, CALLATTR


class AsyncResult:
    """The reply to one request, filled in by the connection when it arrives.

    Thread-safe: any thread may wait, and the connection completes the result from whatever
    thread dispatched the reply. Waiting goes through the connection's driver, so a waiting
    thread may serve the peer's requests in the meantime.
    """

    __slots__ = (
        "_conn",
        "_done",
        "_is_error",
        "_value",
        "_callbacks",
        "_deadline",
        "_lock",
        "_request",
        "_expiry",
    )

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._done = False
        self._is_error = False
        self._value: Any = None
        self._callbacks: Optional[List[Callable[[AsyncResult], Any]]] = None
        self._deadline: Optional[float] = None
        self._lock = threading.Lock()
        # (handler code, arguments) of the request, for timeout messages; dropped on
        # completion so the arguments are not kept alive.
        self._request: Optional[Tuple[int, tuple]] = None
        self._expiry: Optional[float] = None  # seconds given to set_expiry

    def __repr__(self) -> str:
        if self._done:
            state = "error" if self._is_error else "ready"
        elif self.expired:
            state = "expired"
        else:
            state = "pending"
        return f"<AsyncResult {state}>"

    @property
    def ready(self) -> bool:
        """True once the reply arrived; polls the connection once when it has not."""
        if not self._done and not self.expired and not self._conn.closed:
            self._conn._driver.poll()
        return self._done

    @property
    def error(self) -> bool:
        """True when the reply arrived and it is an exception."""
        return self.ready and self._is_error

    @property
    def expired(self) -> bool:
        """True when an expiry was set and has passed without a reply."""
        deadline = self._deadline
        return not self._done and deadline is not None and time.monotonic() > deadline

    def set_expiry(self, timeout: Optional[float]) -> None:
        """Make ``value`` and ``wait`` give up ``timeout`` seconds from now (None: never)."""
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._expiry = timeout

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the reply arrives.

        Args:
            timeout: seconds to wait at most; ``None`` waits until the expiry set with
                ``set_expiry``, or without limit when none was set.

        Raises:
            AsyncResultTimeout: no reply in time (the peer is not told; a late reply is
                dropped).
            ConnectionClosed: the connection closed before the reply arrived.
        """
        if self._done:
            return
        limit = timeout
        if timeout is None and self._deadline is not None:
            timeout = max(0.0, self._deadline - time.monotonic())
            limit = self._expiry
        if not self._conn._driver.wait_for(self, timeout) and not self._done:
            if self._conn.closed:
                raise ConnectionClosed(
                    f"connection {self._conn.connid} closed while waiting for a reply"
                )
            raise AsyncResultTimeout(self.timeout_message(limit))

    def describe(self) -> str:
        """Name the request, e.g. ``CALLATTR 'slow' on <netref __main__.MyService>``."""
        if self._request is None:
            return "request"
        return describe_request(*self._request)

    def timeout_message(self, timeout: Optional[float]) -> str:
        """Build the ``AsyncResultTimeout`` message for a wait of ``timeout`` seconds."""
        seconds = "an unlimited time" if timeout is None else f"{timeout:g} s"
        return (
            f"{self.describe()} timed out after {seconds} on connection "
            f"{self._conn.connid}: no reply arrived (the peer is busy, stopped or "
            "unreachable); the connection stays open and a late reply is dropped"
        )

    def __await__(self) -> Generator[Any, None, Any]:
        """Wait for the reply on the running asyncio loop; return the value or raise.

        Works on any loop (see ``rpyc_engine.awaiting``): the thread that dispatches
        the reply hands the completion to the loop. An expiry set with ``set_expiry``
        bounds the wait.

        Raises:
            AsyncResultTimeout: the expiry passed without a reply.
            ConnectionClosed: the connection closed before the reply arrived.
            Exception: the peer's exception.
        """
        from rpyc_engine.awaiting import await_result

        return await_result(self).__await__()

    @property
    def value(self) -> Any:
        """The returned value; waits for it, and raises the peer's exception if it failed."""
        self.wait()
        if self._is_error:
            raise self._value
        return self._value

    def add_callback(self, func: Callable[[AsyncResult], Any]) -> None:
        """Call ``func(self)`` when the result completes (at once if it already has).

        The callback runs on the thread that completes the result; exceptions it raises
        propagate there, so keep it short and let it not raise.
        """
        with self._lock:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(func)
                return
        func(self)

    def _set(self, is_error: bool, value: Any) -> None:
        """Complete the result; called by the connection, once."""
        with self._lock:
            if self._done:
                return
            self._value = value
            self._is_error = is_error
            self._done = True
            self._request = None
            callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for func in callbacks:
                try:
                    func(self)
                except Exception:
                    # The completing thread is a connection's reader; a failing callback
                    # must not stop it from serving.
                    logger.warning(
                        "%s: callback %r of a result raised",
                        self._conn.connid,
                        func,
                        exc_info=True,
                    )


def _describe_value(value: Any) -> str:
    from rpyc_engine.netref import BaseNetref, get_id_pack

    if isinstance(value, BaseNetref):
        # Local facts only: repr() of a proxy would itself be a remote call.
        return f"<netref {get_id_pack(value)[0]}>"
    text = repr(value) if isinstance(value, (str, bytes, int, float)) else None
    if text is None:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def describe_request(handler: int, args: tuple) -> str:
    """Name a request for messages: handler, attribute and target, without I/O."""
    from rpyc_engine.protocol.wire import HANDLER_NAMES

    name = HANDLER_NAMES.get(handler, f"handler {handler}")
    if not args:
        return name
    target = _describe_value(args[0])
    if handler in _NAMED_HANDLERS and len(args) > 1:
        return f"{name} {_describe_value(args[1])} on {target}"
    return f"{name} on {target}"


class AsyncProxy:
    """Callable wrapper of a proxy that sends CALL and returns an ``AsyncResult``.

    With ``timeout`` set (see ``timed``), each result expires that many seconds after
    the call.
    """

    __slots__ = ("_proxy", "_timeout")

    def __init__(self, proxy: Any, timeout: Optional[float] = None) -> None:
        self._proxy = proxy
        self._timeout = timeout

    def __repr__(self) -> str:
        if self._timeout is not None:
            return f"timed({self._proxy!r}, {self._timeout:g})"
        return f"async_({self._proxy!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult:
        from rpyc_engine.protocol.wire import HANDLE_CALL

        conn = object.__getattribute__(self._proxy, "____conn__")
        kwargs_pairs = tuple(kwargs.items())
        result = conn.async_request(HANDLE_CALL, self._proxy, args, kwargs_pairs)
        if self._timeout is not None:
            result.set_expiry(self._timeout)
        return result


def async_(proxy: Any) -> AsyncProxy:
    """Wrap a callable proxy so that calling it returns an ``AsyncResult`` at once.

    Raises:
        TypeError: ``proxy`` is not a proxy of a remote object, or is not callable.
    """
    from rpyc_engine.netref import BaseNetref

    if isinstance(proxy, AsyncProxy):
        return proxy
    if not issubclass(type(proxy), BaseNetref):
        raise TypeError(
            f"async_ needs a proxy of a remote object, not {type(proxy).__name__}; "
            "call local functions directly"
        )
    if not callable(proxy):
        raise TypeError(f"{proxy!r} is not callable on the remote side")
    return AsyncProxy(proxy)


def timed(proxy: Any, timeout: float) -> AsyncProxy:
    """Wrap a callable proxy so each call's ``AsyncResult`` expires in ``timeout`` s.

    ``timed(proxy, 0.5)(x).value`` raises ``AsyncResultTimeout`` (naming the call) when
    no reply arrives within 0.5 s; ``await timed(proxy, 0.5)(x)`` does the same on a loop.

    Raises:
        TypeError: ``proxy`` is not a callable proxy of a remote object.
        ValueError: ``timeout`` is negative or not a number.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or timeout < 0
    ):
        raise ValueError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
    wrapped = async_(proxy)
    return AsyncProxy(wrapped._proxy, float(timeout))
