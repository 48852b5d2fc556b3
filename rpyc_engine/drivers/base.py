"""The seam between a connection and the I/O that carries its frames.

A ``Connection`` (``rpyc_engine.connection``) never reads, writes or blocks on a stream
itself. A *driver* owns the byte stream and does three things for it:

1. **Send.** The connection encodes every message into a complete frame (header, body and
   trailer; compressed when large) and calls ``driver.send(data)``. ``data`` may hold several
   frames back to back, for example a batch of DEL requests followed by a call; the driver
   writes it with one write call. ``send`` is thread-safe: writes from different threads never
   interleave. It raises ``ConnectionClosed`` when the stream is closed or the write fails.

2. **Receive.** The driver reads bytes, feeds them to the frame decoder it creates in
   ``bind`` (``FrameDecoder(connection.config.max_frame_size)``) and hands every complete
   payload to ``connection.dispatch_payload(payload)``, in order. Dispatching a request runs
   the handler on the calling thread and may itself send nested requests and wait for their
   replies (a callback into the peer), so the driver must not hold any lock that a nested
   ``wait_for`` needs while it dispatches. A frame the decoder rejects (``FramingError``,
   ``FrameTooLarge``) is reported with ``connection.protocol_violation(exc)``; end of stream or
   an I/O error with ``connection.transport_lost(exc)``. Both close the connection.

3. **Wait.** A thread that needs a reply calls ``driver.wait_for(result, timeout)``. The
   driver returns ``True`` once ``result.ready`` is true, or ``False`` when ``timeout``
   seconds passed first or the stream closed. How it waits is the driver's choice: the
   threaded driver lets the waiting thread read and dispatch frames itself, so requests from
   the peer (callbacks, DEL, INSPECT) are served while it waits; an event-loop driver reads on
   the loop and wakes waiters. ``AsyncResult`` completion is signalled through the result
   object itself (``AsyncResult.add_callback``), so a driver can wake waiters from there.

Besides these, a driver offers ``poll()`` (process what is already readable, without
blocking), ``serve(timeout)`` and ``serve_all()`` (the serving loops used by servers and
background threads) and ``close()``. A driver calls ``connection.flush_releases()`` when it is
idle, so DEL requests queued by the garbage collector reach the peer even when the program
makes no further calls.

This module imports nothing outside the standard library and the protocol core.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from rpyc_engine.protocol.framing import FrameDecoder

if TYPE_CHECKING:
    from rpyc_engine.async_result import AsyncResult
    from rpyc_engine.connection import Connection

__all__ = ["Driver"]


class Driver(abc.ABC):
    """Owner of one byte stream, serving one connection.

    Subclasses implement the abstract methods; ``bind`` is called once by the connection's
    constructor, before any frame is sent or received.
    """

    connection: Connection | None = None
    decoder: FrameDecoder | None = None

    def bind(self, connection: Connection) -> None:
        """Attach the driver to ``connection`` and create the frame decoder for it.

        Raises:
            RuntimeError: the driver already serves another connection.
        """
        if self.connection is not None and self.connection is not connection:
            raise RuntimeError(
                f"driver {self!r} already serves {self.connection!r}; "
                "create one driver per connection"
            )
        self.connection = connection
        self.decoder = FrameDecoder(connection.config.max_frame_size)

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once the stream is closed; nothing can be sent or received after that."""

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Write ``data`` (one or more complete frames) to the stream in one write call.

        Thread-safe. Raises ``ConnectionClosed`` when the stream is closed or the write
        fails; in the second case the driver also reports ``transport_lost``.
        """

    def check_can_block(self) -> None:
        """Raise if the calling thread must not block in ``wait_for``.

        The connection calls this before it sends a synchronous request, so a call that
        could never get a reply fails before anything reaches the peer. The default
        allows every thread; an event-loop driver rejects the loop's own thread.
        """

    def backlog(self) -> bool:
        """True when payloads already read wait to be dispatched.

        The connection then holds back the reply to a DEL request and sends it with the
        next frame, which usually follows at once: this engine writes its DEL requests
        together with its next call, so they arrive in one read. The driver must call ``connection.flush_releases()`` once
        the backlog is gone. The default reports none.
        """
        return False

    def linger(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the peer to close, discarding what arrives.

        The connection calls this after sending CLOSE, so the peer finishes writing before
        our end of the stream goes away (closing a socket with unread data makes the peer
        see a reset in the middle of its write). The default returns at once.
        """

    @abc.abstractmethod
    def wait_for(self, result: AsyncResult, timeout: float | None) -> bool:
        """Block until ``result.ready`` is true; return ``False`` on timeout or close.

        ``timeout`` is in seconds; ``None`` waits without limit. While waiting, the driver
        keeps dispatching incoming frames so the peer's requests are served.
        """

    @abc.abstractmethod
    def poll(self) -> bool:
        """Dispatch the frames that can be read without blocking; return True if any."""

    @abc.abstractmethod
    def serve(self, timeout: float | None = 1.0) -> bool:
        """Wait up to ``timeout`` seconds for data, dispatch what arrives; True if any."""

    @abc.abstractmethod
    def serve_all(self) -> None:
        """Serve until the connection closes, then return (EOF is not an error here)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the stream and wake every waiter.

        Implementations are idempotent and must not raise on I/O errors.
        """
