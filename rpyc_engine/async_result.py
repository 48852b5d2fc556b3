"""The pending result of a request, and ``async_`` for calling proxies without waiting."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from rpyc_engine.protocol.errors import AsyncResultTimeout, ConnectionClosed

if TYPE_CHECKING:
    from rpyc_engine.connection import Connection

__all__ = ["AsyncResult", "AsyncProxy", "async_"]


class AsyncResult:
    """The reply to one request, filled in by the connection when it arrives.

    Thread-safe: any thread may wait, and the connection completes the result from whatever
    thread dispatched the reply. Waiting goes through the connection's driver, so a waiting
    thread may serve the peer's requests in the meantime.
    """

    __slots__ = ("_conn", "_done", "_is_error", "_value", "_callbacks", "_deadline", "_lock")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._done = False
        self._is_error = False
        self._value: Any = None
        self._callbacks: Optional[List[Callable[[AsyncResult], Any]]] = None
        self._deadline: Optional[float] = None
        self._lock = threading.Lock()

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
        if timeout is None and self._deadline is not None:
            timeout = max(0.0, self._deadline - time.monotonic())
        if not self._conn._driver.wait_for(self, timeout) and not self._done:
            if self._conn.closed:
                raise ConnectionClosed(
                    f"connection {self._conn.connid} closed while waiting for a reply"
                )
            raise AsyncResultTimeout(f"result expired: no reply within {timeout} s")

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
            callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for func in callbacks:
                func(self)


class AsyncProxy:
    """Callable wrapper of a proxy that sends CALL and returns an ``AsyncResult``."""

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def __repr__(self) -> str:
        return f"async_({self._proxy!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult:
        from rpyc_engine.protocol.wire import HANDLE_CALL

        conn = object.__getattribute__(self._proxy, "____conn__")
        return conn.async_request(HANDLE_CALL, self._proxy, args, tuple(kwargs.items()))


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
