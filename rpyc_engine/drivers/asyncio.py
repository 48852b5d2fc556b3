"""Asyncio driver: a connection whose stream is read and written on an event loop.

Theory of operation:

* **Reading.** A reader task on the loop reads the ``asyncio.StreamReader`` and feeds
  the frame decoder. It never dispatches: every complete payload becomes a job for the
  connection's *worker thread*, in arrival order.
* **Dispatching.** The worker thread (one per connection) runs the jobs in order. Jobs
  are replies (whose unboxing may send INSPECT and wait), requests from the peer
  (callbacks, DEL, INSPECT), protocol violations, the end of the stream, and functions
  given to ``submit`` (the connection's constructor and ``close``). So no peer request
  and no handler ever runs on the loop, and requests from the peer run one at a time
  in arrival order, as on a stock server. When a job on the worker waits for a reply (a
  callback that calls the peer back), the worker runs the following jobs while it
  waits, so nested calls in both directions cannot deadlock.
* **Writing.** ``send`` queues frames on the loop: directly on the loop thread, through
  ``loop.call_soon_threadsafe`` from other threads, so frames from one thread keep their
  order. The queue is written with one ``transport.write`` per loop iteration.
* **Waiting.** Coroutines ``await`` an ``AsyncResult``; the worker completes it and
  ``rpyc_engine.awaiting`` wakes the loop. Other threads may still make synchronous
  calls: they block on a ``threading.Event`` set when their result completes, which
  stops only them. A synchronous call on the loop's own thread raises ``RuntimeError``
  before anything is sent, because it would freeze the loop that has to deliver the
  reply.

NOTE: a peer request whose handler does slow local work (not a nested call) holds up the
replies queued behind it, as it does on a stock connection's serving thread.

Client-side only (CPython 3.10+); not part of the server bundle.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Set, Tuple

from rpyc_engine.drivers.base import Driver
from rpyc_engine.protocol.errors import ConnectionClosed, ProtocolError
from rpyc_engine.tls import split_frames

__all__ = ["AsyncioDriver", "LOOP_THREAD_MESSAGE"]

logger = logging.getLogger(__name__)

READ_CHUNK = 64000  # bytes per read, stock's STREAM_CHUNK
IDLE_FLUSH_INTERVAL = 0.5  # seconds between idle checks for queued DEL requests

LOOP_THREAD_MESSAGE = (
    "a synchronous remote call on the event loop thread would freeze it; use "
    "await rpyc_engine.aio.call(...), aio.callattr(...) or aio.getattr(...) "
    "instead, or make the call from another thread"
)

# Job kinds for the worker thread.
_PAYLOAD = 0
_VIOLATION = 1
_LOST = 2
_CALL = 3
_STOP = 4

_Job = Tuple[int, Any]


class AsyncioDriver(Driver):
    """Driver for a connection whose stream lives on an asyncio event loop.

    Create it on the loop's thread (``aio.connect`` and friends do). Then build the
    connection with ``submit``, so that ``Connection.__init__`` and the service's
    ``on_connect`` run on the worker thread. Reading starts when the connection binds.

    Args:
        reader: the stream to read frames from.
        writer: the stream to write frames to; its transport is closed by ``close``.
        name: a label for the worker thread and logs.
    """

    reads_by_itself = True  # awaiting needs no waiting thread (rpyc_engine.awaiting)

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str = "rpyc-aio",
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._reader = reader
        self._writer = writer
        self._name = name
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._jobs: Deque[_Job] = collections.deque()
        self._outgoing: List[bytes] = []  # frames written on the loop, not yet flushed
        # Over TLS each frame gets its own record for stock peers (see TLSStreamSocket).
        self._one_record_per_frame = writer.get_extra_info("ssl_object") is not None
        self._closed = False
        self._close_requested = False
        self._stop_queued = False
        self.lost_reason: Optional[BaseException] = None
        self._finished = threading.Event()
        self._finished_future: asyncio.Future = self.loop.create_future()
        self._waiters: Set[threading.Event] = set()
        self._reader_task: Optional[asyncio.Task] = None
        self._worker_ident: Optional[int] = None
        self._worker = threading.Thread(
            target=self._work, name=f"{name}-worker", daemon=True
        )
        self._worker.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AsyncioDriver {self._name} {state}>"

    # ------------------------------------------------------------------ the seam

    def bind(self, connection: Any) -> None:
        """Attach the connection and start the reader task on the loop."""
        super().bind(connection)
        self._name = f"{connection.connid}"
        self._worker.name = f"rpyc-aio-{connection.connid}"
        self._call_on_loop(self._start_reading)

    @property
    def closed(self) -> bool:
        """True once the stream is closed."""
        return self._closed

    @property
    def worker_thread(self) -> threading.Thread:
        """The thread that runs the peer's requests and the replies' unboxing."""
        return self._worker

    def check_can_block(self) -> None:
        """Raise ``RuntimeError`` on the loop thread, since waiting would freeze it."""
        if threading.get_ident() == self._loop_thread and not self.loop.is_closed():
            raise RuntimeError(LOOP_THREAD_MESSAGE)

    def send(self, data: bytes) -> None:
        """Write ``data`` through the transport; thread-safe, in order per thread."""
        if self._closed:
            raise ConnectionClosed(f"connection {self._name} is closed")
        if threading.get_ident() == self._loop_thread:
            self._write(data)
            return
        try:
            self.loop.call_soon_threadsafe(self._write, data)
        except RuntimeError as exc:  # the loop is closed
            self._closed = True
            raise ConnectionClosed(
                f"connection {self._name}: its event loop is closed"
            ) from exc

    def wait_for(self, result: Any, timeout: Optional[float]) -> bool:
        """Wait for ``result``: pump jobs on the worker, block other threads.

        Raises:
            RuntimeError: called on the event loop's thread.
        """
        self.check_can_block()
        if threading.get_ident() == self._worker_ident:
            return self._pump_until(result, timeout)
        return self._block_until(result, timeout)

    def poll(self) -> bool:
        """Return False: the reader task reads as soon as data arrives."""
        return False

    def serve(self, timeout: Optional[float] = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for the connection to end; return False.

        The loop and the worker thread serve the connection, so there is nothing for
        the calling thread to do.
        """
        self.check_can_block()
        self._finished.wait(timeout)
        return False

    def serve_all(self) -> None:
        """Block until the connection has closed and its worker thread has ended."""
        self.check_can_block()
        self._finished.wait()

    def linger(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the peer to close after our CLOSE.

        Frames that arrive meanwhile stay queued for the worker. On the loop thread this
        returns at once, because the loop must run for the end of stream to be seen.
        """
        if threading.get_ident() == self._loop_thread:
            return
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._stop_queued:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.wait(remaining)

    def close(self) -> None:
        """Close the transport; the reader task then queues the end of stream."""
        with self._lock:
            if self._close_requested:
                return
            self._close_requested = True
        self._closed = True
        if not self._call_on_loop(self._close_transport):
            # The loop is gone, so no reader task will report the end: stop here.
            self._stream_ended(None)

    def fileno(self) -> int:
        """Return the socket's file descriptor, or -1 for a stream without one."""
        sock = self._writer.get_extra_info("socket")
        return sock.fileno() if sock is not None else -1

    # ------------------------------------------------------------------ for aio.py

    def submit(self, func: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``func()`` on the worker thread after the jobs already queued.

        The future fails with ``ConnectionClosed`` when the stream has ended, because
        the worker stops after it has handled the end of the stream.
        """
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if not self._stop_queued:
                self._jobs.append((_CALL, (func, future)))
                self._wakeup.notify_all()
                return future
        future.set_exception(ConnectionClosed(f"connection {self._name} has ended"))
        return future

    async def wait_finished(self) -> None:
        """Wait until the worker thread has handled the end of the stream and stops."""
        await asyncio.shield(self._finished_future)

    # ------------------------------------------------------------------ loop side

    def _call_on_loop(self, func: Callable[[], Any]) -> bool:
        if threading.get_ident() == self._loop_thread:
            func()
            return True
        try:
            self.loop.call_soon_threadsafe(func)
        except RuntimeError:
            return False
        return True

    def _start_reading(self) -> None:
        if self._reader_task is None:
            self._reader_task = self.loop.create_task(
                self._read_loop(), name=f"{self._name}-reader"
            )

    def _write(self, data: bytes) -> None:
        """Queue ``data`` and flush once per loop iteration: one syscall per burst."""
        self._outgoing.append(data)
        if len(self._outgoing) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        if not self._outgoing:
            return
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        if self._writer.is_closing():
            return  # the reader task reports the end of the stream
        if self._one_record_per_frame:
            for frame in split_frames(data):
                self._writer.write(frame)
        else:
            self._writer.write(data)

    def _close_transport(self) -> None:
        if self._outgoing:
            self._flush()  # for example the CLOSE request sent just before
        if not self._writer.is_closing():
            self._writer.close()
        if self._reader_task is None:
            self._stream_ended(None)

    async def _read_loop(self) -> None:
        error: Optional[BaseException] = None
        decoder = self.decoder
        assert decoder is not None
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    break
                try:
                    payloads = decoder.feed(data)
                except ProtocolError as exc:
                    self._enqueue((_VIOLATION, exc))
                    break
                if payloads:
                    self._enqueue_payloads(payloads)
        except asyncio.CancelledError:
            error = ConnectionClosed(f"connection {self._name}: reader task cancelled")
        except (OSError, EOFError) as exc:  # includes ssl.SSLError
            error = exc
        finally:
            self._stream_ended(error)

    def _stream_ended(self, error: Optional[BaseException]) -> None:
        with self._lock:
            if self._stop_queued:
                return
            self._stop_queued = True
        self.lost_reason = error
        self._closed = True
        if threading.get_ident() == self._loop_thread and not self._writer.is_closing():
            self._writer.close()
        self._enqueue((_LOST, error))
        self._enqueue((_STOP, None))

    def _worker_done(self) -> None:
        if not self._finished_future.done():
            self._finished_future.set_result(None)

    # ------------------------------------------------------------------ worker side

    def _enqueue(self, job: _Job) -> None:
        with self._lock:
            self._jobs.append(job)
            self._wakeup.notify_all()

    def _enqueue_payloads(self, payloads: list) -> None:
        with self._lock:
            self._jobs.extend((_PAYLOAD, payload) for payload in payloads)
            self._wakeup.notify_all()

    def _take(
        self, ready: Callable[[], bool], timeout: Optional[float]
    ) -> Optional[_Job]:
        """Pop the next job; None when ``ready()`` became true or ``timeout`` passed."""
        with self._lock:
            if not self._jobs and not ready():
                self._wakeup.wait(timeout)
            if self._jobs and not ready():
                return self._jobs.popleft()
            return None

    def _work(self) -> None:
        self._worker_ident = threading.get_ident()
        try:
            while True:
                job = self._take(lambda: False, IDLE_FLUSH_INTERVAL)
                if job is None:
                    self._flush_releases()
                    continue
                if job[0] == _STOP:
                    break
                self._run(job)
                if not self._jobs:
                    self._flush_releases()
        finally:
            self._finished.set()
            with self._lock:
                waiters = list(self._waiters)
            for event in waiters:
                event.set()
            try:
                self.loop.call_soon_threadsafe(self._worker_done)
            except RuntimeError:
                pass  # the loop is closed, so no coroutine awaits wait_finished

    def _flush_releases(self) -> None:
        connection = self.connection
        if connection is not None and not connection.closed:
            connection.flush_releases()

    def _run(self, job: _Job) -> None:
        kind, arg = job
        connection = self.connection
        try:
            if kind == _CALL:
                func, future = arg
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(func())
                    except BaseException as exc:
                        future.set_exception(exc)
            elif connection is None:
                logger.debug(
                    "%s: job %d before the connection bound, dropped", self._name, kind
                )
            elif kind == _PAYLOAD:
                connection.dispatch_payload(arg)
            elif kind == _VIOLATION:
                connection.protocol_violation(arg)
            elif kind == _LOST:
                connection.transport_lost(arg)
        except Exception:
            logger.exception("%s: dispatching a message failed", self._name)

    def _pump_until(self, result: Any, timeout: Optional[float]) -> bool:
        """Run queued jobs on the worker until ``result`` is done or time runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        result.add_callback(self._notify)
        while not result._done:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            job = self._take(lambda: result._done, remaining)
            if job is None:
                continue
            if job[0] == _STOP:
                with self._lock:
                    self._jobs.appendleft(job)
                break
            self._run(job)
        return bool(result._done)

    def _notify(self, _result: Any) -> None:
        with self._lock:
            self._wakeup.notify_all()

    def _block_until(self, result: Any, timeout: Optional[float]) -> bool:
        """Block a thread that is neither the loop's nor the worker's."""
        event = threading.Event()
        result.add_callback(lambda _result: event.set())
        with self._lock:
            if self._finished.is_set():
                return bool(result._done)
            self._waiters.add(event)
        try:
            event.wait(timeout)
        finally:
            with self._lock:
                self._waiters.discard(event)
        return bool(result._done)
