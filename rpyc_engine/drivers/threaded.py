"""The threaded driver: blocking streams, with waiting threads reading for themselves.

There is no reader thread per connection. A thread that waits for a reply becomes the
reader while no other thread is reading. It reads, puts every payload after the first
in a shared inbox, releases the read lock and dispatches the first payload itself. Then
it dispatches payloads from the inbox one at a time until its reply has arrived. So the
peer's requests (callbacks, DEL, INSPECT) are served while it waits, and the common
case (one reply, read by the one thread waiting for it) never touches the inbox. Other
waiting threads sleep on a condition. They are woken whenever the reader
finishes a read and after every dispatched payload, and then dispatch from the inbox or
take over reading. A reply queued behind a slow handler is therefore dispatched by
whichever thread is free. Servers and ``BgServingThread`` call ``serve`` in a loop.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, Optional

from rpyc_engine.drivers.base import Driver
from rpyc_engine.protocol.errors import ConnectionClosed, FramingError

if TYPE_CHECKING:
    from rpyc_engine.async_result import AsyncResult
    from rpyc_engine.drivers.streams import Stream

__all__ = ["BgServingThread", "ThreadedDriver"]

logger = logging.getLogger(__name__)

# Maximum seconds of one blocking poll(). It bounds how late a reader notices a close made
# by another thread on a stream whose close does not wake poll() (pipes).
_MAX_POLL_SLICE = 1.0


class ThreadedDriver(Driver):
    """Driver over a blocking ``Stream`` (``rpyc_engine.drivers.streams``)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        # Payloads read and not yet dispatched, oldest first (see _dispatch_next).
        self._inbox: Deque[bytes] = collections.deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"<ThreadedDriver {self.stream!r}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self.stream.fileno()

    # ------------------------------------------------------------------ sending

    def send(self, data: bytes) -> None:
        with self._send_lock:
            if self._closed:
                raise ConnectionClosed("the connection is closed")
            try:
                self.stream.write(data)
            except ConnectionClosed as exc:
                error = exc
            else:
                return
        self._lost(error)
        raise error

    # ------------------------------------------------------------------ receiving

    def _read_locked(self, timeout: Optional[float]) -> Optional[bytes]:
        """Read once; return the first payload read and queue the rest in the inbox.

        The caller holds the read lock, which this releases, and has seen the inbox empty
        (only the reader adds to it), so the payload returned is the oldest one not yet
        dispatched. Handing it to the caller directly saves the trip through the inbox.
        """
        first = None
        error: Optional[BaseException] = None
        try:
            if timeout is None or timeout > _MAX_POLL_SLICE:
                timeout = _MAX_POLL_SLICE
            if not self._closed:
                data = self.stream.read_within(timeout)
                if data:
                    payloads = self.decoder.feed(data)  # type: ignore[union-attr]
                    if payloads:
                        first = payloads[0]
                        if len(payloads) > 1:
                            self._inbox.extend(payloads[1:])
                    if self.decoder.buffered:  # type: ignore[union-attr]
                        # Part of a frame is missing: the peer may wait for our ACK.
                        self.stream.quickack()
        except (ConnectionClosed, FramingError) as exc:
            error = exc
        finally:
            self._release_read_lock()
        if error is not None:
            if isinstance(error, FramingError):
                self.connection.protocol_violation(error)  # type: ignore[union-attr]
            else:
                self._lost(error)
        return first

    def _release_read_lock(self) -> None:
        self._recv_lock.release()
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def _dispatch_next(self) -> bool:
        """Dispatch the oldest payload read but not yet dispatched; False if there is none.

        Payloads wait in a shared inbox instead of in the reader's hands, so while one
        thread runs a slow handler, other threads dispatch what was read after it (a reply
        someone waits for, or the next request under ``serve_threaded``).
        """
        if not self._inbox:
            return False
        try:
            payload = self._inbox.popleft()
        except IndexError:  # another thread took the last one
            return False
        self._dispatch(payload)
        return True

    def backlog(self) -> bool:
        return bool(self._inbox)

    def _dispatch(self, payload: bytes) -> None:
        connection = self.connection
        connection.dispatch_payload(payload)  # type: ignore[union-attr]
        if connection._held_replies and not self._inbox:  # type: ignore[union-attr]
            connection.flush_releases()  # type: ignore[union-attr]
        if self._waiters:
            with self._cond:
                self._cond.notify_all()

    def wait_for(self, result: AsyncResult, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not result._done:
            if self._dispatch_next():
                self._ack_if_waiting(result)
                continue
            if self._closed:
                return result._done
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return result._done
            if self._recv_lock.acquire(False):
                if result._done or self._inbox:
                    self._release_read_lock()
                else:
                    payload = self._read_locked(remaining)
                    if payload is not None:
                        self._dispatch(payload)
                        self._ack_if_waiting(result)
                continue
            with self._cond:
                self._waiters += 1
                try:
                    if (
                        not result._done
                        and not self._inbox
                        and self._recv_lock.locked()
                        and not self._closed
                    ):
                        self._cond.wait(remaining)
                finally:
                    self._waiters -= 1
        return True

    def _ack_if_waiting(self, result: AsyncResult) -> None:
        if not result._done and not self._inbox and not self._closed:
            # Still waiting: acknowledge now so a Nagle-bound peer sends the rest of its
            # replies without waiting for a delayed ACK.
            self.stream.quickack()

    def poll(self) -> bool:
        """Dispatch every payload already read plus what one non-blocking read returns."""
        served = False
        while self._dispatch_next():
            served = True
        if not self._closed and self._recv_lock.acquire(False):
            if self._inbox:
                self._release_read_lock()
            else:
                payload = self._read_locked(0)
                if payload is not None:
                    self._dispatch(payload)
                    served = True
            while self._dispatch_next():
                served = True
        return served

    def serve(self, timeout: Optional[float] = 1.0) -> bool:
        """Dispatch one payload, waiting up to ``timeout`` seconds (None: no limit) for it."""
        if self._closed:
            raise ConnectionClosed("the connection is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        served = False
        first = True
        while True:
            if self._dispatch_next():
                served = True
                break
            if self._closed:
                break
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and not first:
                    break
                remaining = max(0.0, remaining)
            first = False
            if not self._recv_lock.acquire(
                True, -1 if remaining is None else remaining
            ):
                break
            if self._inbox:
                self._release_read_lock()
            else:
                payload = self._read_locked(remaining)
                if payload is not None:
                    self._dispatch(payload)
                    served = True
                    break
        if not self._inbox:
            # With payloads left, the next serve (or the next send) carries these.
            self.connection.flush_releases()  # type: ignore[union-attr]
        if not served and self._closed:
            raise ConnectionClosed("the connection is closed")
        return served

    def serve_all(self) -> None:
        conn = self.connection
        try:
            while not self._closed:
                self.serve(_MAX_POLL_SLICE)
        except ConnectionClosed:
            pass
        finally:
            if conn is not None:
                conn.close()

    # ------------------------------------------------------------------ closing

    def linger(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self._closed or not self._recv_lock.acquire(True, timeout):
            return
        try:
            while not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if self.stream.poll(min(remaining, _MAX_POLL_SLICE)):
                    self.stream.read()
        except ConnectionClosed:
            pass
        finally:
            self._release_read_lock()

    def _lost(self, exc: BaseException) -> None:
        if self.connection is not None:
            self.connection.transport_lost(exc)
        else:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.clear()
        try:
            self.stream.close()
        except Exception:
            logger.debug(
                "%r: error while closing the stream, ignored", self, exc_info=True
            )
        with self._cond:
            self._cond.notify_all()


class BgServingThread:
    """A daemon thread that serves a connection until it closes or ``stop()`` is called.

    Args:
        conn: the connection to serve.
        callback: called with no arguments when the thread ends because the connection
            closed (not after ``stop()``).
        serve_interval: seconds each ``serve`` call waits for data.
        sleep_interval: seconds to sleep between ``serve`` calls (0: none).
    """

    def __init__(
        self,
        conn: Any,
        callback: Optional[Callable[[], Any]] = None,
        serve_interval: float = 0.2,
        sleep_interval: float = 0.0,
    ) -> None:
        self._conn = conn
        self._callback = callback
        self._serve_interval = serve_interval
        self._sleep_interval = sleep_interval
        self._active = True
        self._thread = threading.Thread(
            target=self._run, name=f"rpyc-bg-{conn.connid}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while self._active:
                self._conn.serve(self._serve_interval)
                if self._sleep_interval:
                    time.sleep(self._sleep_interval)
        except ConnectionClosed:
            self._active = False
            if self._callback is not None:
                self._callback()
        except Exception:
            self._active = False
            logger.warning(
                "%s: background serving failed", self._conn.connid, exc_info=True
            )

    @property
    def active(self) -> bool:
        """True while the thread serves."""
        return self._active and self._thread.is_alive()

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stop serving and wait up to ``timeout`` seconds for the thread to end.

        Raises:
            RuntimeError: called from the serving thread itself.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "BgServingThread.stop() cannot be called from its own thread"
            )
        self._active = False
        self._thread.join(timeout)
