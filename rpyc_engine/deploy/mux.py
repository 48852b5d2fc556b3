"""Channel multiplexer that carries several byte streams over one SSH session's stdio.

A deployed server talks to its client only through the stdin and stdout of the process
that SSH (or a local subprocess) started, so no port is ever opened. This module cuts that
one duplex byte stream into numbered channels. Channel 0 carries control messages (hello,
heartbeat, shutdown); every other channel carries one RPyC connection.

A channel is handed to an RPyC connection in one of two forms:

* a `MuxStream` (`Multiplexer.open_stream`): the connection's own thread reads the pipe
  and parses frames when it waits for data, and writes each frame with one call, so a
  round trip costs no thread switch. Frames for other channels read on the way are queued
  for their readers. When no channel reads (all idle or busy in handlers), the
  multiplexer's own thread reads after `IDLE_GRACE` seconds, so heartbeats, new channels
  and other channels' data wait at most about that long for an idle or busy connection.
* a connected socket (`Multiplexer.open_channel`), one end of a ``socket.socketpair()``
  whose other end two pump threads copy to and from the channel: for asyncio and other
  users that need a real file descriptor.

A frame is a 9-byte header ``kind (u8), channel (u32), length (u32)``, big-endian, followed
by ``length`` payload bytes. ``CLOSE`` on a channel means its sender will send no more data
there (a half-close); control payloads are UTF-8 JSON objects.

This module is part of the server part that is uploaded to remote hosts: it must run on
CPython 3.8 and newer and import only the standard library and the engine.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import socket
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional, Union

from rpyc_engine.protocol.errors import ConnectionClosed

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!BII")
HELLO = 1
OPEN = 2
DATA = 3
CLOSE = 4
PING = 5
PONG = 6
SHUTDOWN = 7
CONTROL = 0
# Largest payload put in one DATA frame, and the largest one accepted.
CHUNK_SIZE = 256 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024
# The server writes this before its first frame. A login script that prints to stdout
# (a .bashrc echo) puts text ahead of it, which the client skips, up to MAX_NOISE bytes.
PREAMBLE = b"\x00rpyc-deploy-stream\x00"
MAX_NOISE = 64 * 1024
# Seconds without a channel reading the pipe before the multiplexer's thread reads it
# (at once when no channel is open), and how long that thread waits for data before it
# checks for a channel reader again.
IDLE_GRACE = 0.02
IDLE_POLL = 1.0


class MuxError(Exception):
    """The multiplexed stream is corrupt or closed."""


def encode_control(message: Dict[str, Any]) -> bytes:
    """Encode a control payload (a dict) as compact UTF-8 JSON."""
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def decode_control(payload: bytes) -> Dict[str, Any]:
    """Decode a control payload; an empty payload decodes to an empty dict."""
    if not payload:
        return {}
    message = json.loads(payload.decode("utf-8"))
    if not isinstance(message, dict):
        raise MuxError(f"control payload is not a JSON object: {payload[:80]!r}")
    return message


class _Channel:
    """A channel served through a socketpair: our end plus its two pump threads."""

    def __init__(self, mux: Multiplexer, number: int) -> None:
        self.mux = mux
        self.number = number
        self.ours, self.theirs = socket.socketpair()
        self.incoming = queue.Queue()
        self.sent_close = False
        self.got_close = False
        self._running = 2
        self._running_lock = threading.Lock()
        name = f"{mux.name}-ch{number}"
        self._writer = threading.Thread(target=self._write_loop, name=name + "-in")
        self._reader = threading.Thread(target=self._read_loop, name=name + "-out")
        self._writer.daemon = True
        self._reader.daemon = True

    def start(self):
        self._writer.start()
        self._reader.start()

    def deliver(self, payload):
        self.incoming.put(payload)

    def _write_loop(self):
        # Separate thread per channel, so a slow consumer never stalls the others.
        while True:
            data = self.incoming.get()
            if data is None:
                break
            try:
                self.ours.sendall(data)
            except OSError:
                break
        try:
            self.ours.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._thread_done()

    def _thread_done(self):
        # The last of the two pump threads closes our end, so no queued data is lost.
        with self._running_lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.ours.close()

    def _read_loop(self):
        while True:
            try:
                data = self.ours.recv(CHUNK_SIZE)
            except OSError:
                data = b""
            if not data:
                self.sent_close = True
                self.mux.send_frame(CLOSE, self.number)
                self.mux.forget_if_done(self)
                break
            if not self.mux.send_frame(DATA, self.number, data):
                break
        self._thread_done()

    def peer_closed(self):
        self.got_close = True
        self.incoming.put(None)
        self.mux.forget_if_done(self)

    def abort(self):
        """Cut the channel because the multiplexed stream is gone."""
        self.incoming.put(None)
        for sock in (self.ours, self.theirs):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class MuxStream:
    """One channel as a stream for the threaded driver (see ``drivers.streams.Stream``).

    ``read``/``poll`` read the pipe in the calling thread when no other thread does;
    ``write`` sends each piece of data as one frame.
    """

    def __init__(self, mux: Multiplexer, number: int) -> None:
        self.mux = mux
        self.number = number
        self.pending: Deque[bytes] = collections.deque()
        self.sent_close = False
        self.got_close = False
        self.closed = False

    def __repr__(self):
        state = " closed" if self.closed else ""
        return f"<MuxStream {self.mux.name} channel {self.number}{state}>"

    def deliver(self, payload):
        # Called with the multiplexer's condition held.
        self.pending.append(payload)

    def peer_closed(self):
        self.got_close = True
        self.mux.forget_if_done(self)

    def abort(self):
        """Nothing to do: readers wake on the multiplexer's condition and see it closed."""

    def fileno(self) -> int:
        raise OSError("a multiplexed channel has no file descriptor of its own")

    def quickack(self) -> None:
        """Nothing to acknowledge: the channel is not a TCP socket."""

    def poll(self, timeout: Optional[float]) -> bool:
        if self.closed:
            raise ConnectionClosed("the deploy channel is closed")
        return self.mux.wait_for_data(self, timeout)

    def read(self) -> bytes:
        if self.closed:
            raise ConnectionClosed("the deploy channel is closed")
        if not self.pending:
            self.mux.wait_for_data(self, None)
        return self._take()

    def read_within(self, timeout: Optional[float]) -> bytes:
        """Return the bytes that arrive within ``timeout`` seconds; ``b""`` if none came."""
        if self.closed:
            raise ConnectionClosed("the deploy channel is closed")
        if self.pending or self.mux.wait_for_data(self, timeout):
            return self._take()
        return b""

    def _take(self):
        with self.mux.cond:
            if self.pending:
                if len(self.pending) == 1:
                    return self.pending.popleft()
                data = b"".join(self.pending)
                self.pending.clear()
                return data
        if self.got_close:
            raise ConnectionClosed("the deploy channel was closed by the other side")
        raise ConnectionClosed(
            f"the SSH session of the deployment is gone ({self.mux.close_reason})"
        )

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed("the deploy channel is closed")
        view = memoryview(data)
        for start in range(0, max(len(view), 1), CHUNK_SIZE):
            if not self.mux.send_frame(DATA, self.number, view[start : start + CHUNK_SIZE]):
                raise ConnectionClosed(
                    f"writing to the deployment failed ({self.mux.close_reason})"
                )

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.mux.stream_closed()
        if not self.sent_close:
            self.sent_close = True
            self.mux.send_frame(CLOSE, self.number)
        self.mux.forget_if_done(self)


class Multiplexer:
    """Both ends of the channel protocol over one duplex byte stream.

    Args:
        recv: returns up to ``n`` bytes, ``b""`` at end of stream; called by one thread
            at a time.
        write: writes all of ``data``; raises ``OSError`` when the stream is broken.
        on_open: called as ``on_open(channel)`` when the peer opens a channel. The
            channel is a `MuxStream` if ``accept_streams`` is set, else a socket.
            ``None`` makes peer-opened channels an error (the client side).
        on_control: called as ``on_control(kind, message)`` for control frames other than
            PING, to which the multiplexer replies itself.
        name: prefix for thread names and log lines.
        expect_preamble: bytes the peer sends before its first frame; everything before
            them is logged and dropped. ``None`` expects frames from the first byte.
        wait_readable: ``wait_readable(timeout)`` returns whether ``recv`` has data (or
            end of stream) within ``timeout`` seconds. Without it only the multiplexer's
            own thread reads, blocked in ``recv``, and hands data to every channel.
        accept_streams: see ``on_open``.
    """

    def __init__(
        self,
        recv: Callable[[int], bytes],
        write: Callable[[bytes], Any],
        on_open: Optional[Callable[[Any], None]] = None,
        on_control: Optional[Callable[[int, Dict[str, Any]], None]] = None,
        name: str = "mux",
        expect_preamble: Optional[bytes] = None,
        wait_readable: Optional[Callable[[Optional[float]], bool]] = None,
        accept_streams: bool = False,
    ) -> None:
        self.name = name
        self._expect_preamble = expect_preamble
        self._recv = recv
        self._write = write
        self._wait_readable = wait_readable
        self._on_open = on_open
        self._on_control = on_control
        self._accept_streams = accept_streams
        self._write_lock = threading.Lock()
        self._channels: Dict[int, Union[_Channel, MuxStream]] = {}
        self._channels_lock = threading.Lock()
        self._next_channel = 1
        self.closed = threading.Event()
        self.close_reason = ""
        self.last_received = time.monotonic()
        # Guards the reader role and every MuxStream's pending data.
        self.cond = threading.Condition(threading.Lock())
        self._reading = False
        self._waiting = 0
        self._last_release = 0.0
        self._delivered = False
        self._open_streams = 0
        # Set when the multiplexer's thread should check at once whether to read.
        self._wake = threading.Event()
        self._buffer = bytearray()
        self._synced = expect_preamble is None
        self._thread = threading.Thread(target=self._run, name=name + "-demux")
        self._thread.daemon = True

    def start(self) -> None:
        """Start the thread that reads the stream while no channel does."""
        self._thread.start()

    def run(self) -> None:
        """Read and dispatch frames on the calling thread until the stream ends."""
        self._run()

    def send_frame(self, kind: int, channel: int, payload: Any = b"") -> bool:
        """Write one frame; return False (and close the multiplexer) if the write fails."""
        if self.closed.is_set():
            return False
        frame = HEADER.pack(kind, channel, len(payload)) + payload
        try:
            with self._write_lock:
                self._write(frame)
        except (OSError, ValueError) as exc:
            self.shutdown(f"write failed: {exc}")
            return False
        return True

    def send_control(self, kind: int, message: Optional[Dict[str, Any]] = None) -> bool:
        """Send a control frame on channel 0 with a JSON payload."""
        return self.send_frame(kind, CONTROL, encode_control(message or {}))

    def open_stream(self) -> MuxStream:
        """Open a new channel and return it as a `MuxStream` for ``connect_stream``."""
        return self._open(MuxStream)

    def stream_closed(self) -> None:
        """Note that a `MuxStream` closed: with none left, read in our thread at once."""
        with self.cond:
            self._open_streams -= 1
            if self._open_streams <= 0:
                self._wake.set()

    def open_channel(self) -> socket.socket:
        """Open a new channel and return a connected socket for it."""
        channel = self._open(_Channel)
        channel.start()
        return channel.theirs

    def _open(self, kind):
        with self._channels_lock:
            number = self._next_channel
            self._next_channel += 1
            channel = kind(self, number)
            self._channels[number] = channel
        if kind is MuxStream:
            with self.cond:
                self._open_streams += 1
        if not self.send_frame(OPEN, number):
            if isinstance(channel, _Channel):
                channel.abort()
                channel.ours.close()
                channel.theirs.close()
            raise MuxError(f"{self.name}: stream closed ({self.close_reason})")
        return channel

    def forget_if_done(self, channel: Any) -> None:
        if channel.sent_close and channel.got_close:
            with self._channels_lock:
                self._channels.pop(channel.number, None)

    def shutdown(self, reason: str) -> None:
        """Mark the stream closed and cut every channel; idempotent."""
        with self._channels_lock:
            if self.closed.is_set():
                return
            self.close_reason = reason
            self.closed.set()
            channels = list(self._channels.values())
            self._channels.clear()
        logger.debug("%s: closed (%s)", self.name, reason)
        for channel in channels:
            channel.abort()
        self._wake.set()
        with self.cond:
            self.cond.notify_all()

    # ------------------------------------------------------------------ reading

    def wait_for_data(self, stream: MuxStream, timeout: Optional[float]) -> bool:
        """Wait until ``stream`` has data or is closed; False after ``timeout`` seconds.

        Reads the pipe in this thread while no other thread does. Otherwise it waits
        for the reading thread to hand data over or to give up the reader role.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        cond = self.cond
        while True:
            with cond:
                while True:
                    if stream.pending or stream.got_close or self.closed.is_set():
                        return True
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    if not self._reading and self._wait_readable is not None:
                        self._reading = True
                        break
                    self._waiting += 1
                    try:
                        cond.wait(remaining)
                    finally:
                        self._waiting -= 1
            try:
                self._read_once(remaining)
            finally:
                with cond:
                    self._reading = False
                    self._last_release = time.monotonic()
                    if self._waiting:
                        cond.notify_all()
                    elif stream.closed or stream.got_close:
                        self._wake.set()

    def _read_once(self, timeout):
        """Read what the stream has within ``timeout`` seconds and dispatch its frames."""
        try:
            if self._wait_readable is not None and not self._wait_readable(timeout):
                return
            chunk = self._recv(CHUNK_SIZE + HEADER.size)
            if not chunk:
                self.shutdown("end of stream")
                return
            self.last_received = time.monotonic()
            buffer = self._buffer
            buffer += chunk
            if not self._synced:
                self._synced = self._skip_to_preamble(buffer)
            if self._synced:
                self._dispatch_buffer(buffer)
        except Exception as exc:
            # Also a failing on_open/on_control callback: never leave the peer hanging.
            self.shutdown(f"{type(exc).__name__}: {exc}")

    def _run(self):
        # Read only while no channel does, and only after IDLE_GRACE seconds of that, so
        # a busy connection keeps reading in its own thread.
        poll = None if self._wait_readable is None else IDLE_POLL
        while not self.closed.is_set():
            with self.cond:
                self._wake.clear()
                pause = 0.0
                if self._open_streams > 0:
                    pause = self._last_release + IDLE_GRACE - time.monotonic()
                idle = not self._reading and not self._waiting and pause <= 0
                if idle:
                    self._reading = True
                    self._delivered = False
            if not idle:
                self._wake.wait(max(pause, 0.001) if pause > 0 else IDLE_GRACE)
                continue
            try:
                while not self.closed.is_set():
                    self._read_once(poll)
                    if poll is not None and (self._delivered or self._waiting):
                        break
            finally:
                with self.cond:
                    self._reading = False
                    if self._delivered:
                        self._last_release = time.monotonic()
                    if self._waiting:
                        self.cond.notify_all()

    def _skip_to_preamble(self, buffer):
        """Drop what precedes the preamble (a login script's output); True once found."""
        found = buffer.find(self._expect_preamble)
        if found < 0:
            if len(buffer) > MAX_NOISE:
                start = bytes(buffer[:80])
                raise MuxError(
                    f"no stream preamble in the first {MAX_NOISE} bytes: {start!r}"
                )
            return False
        if found:
            noise = bytes(buffer[:found]).decode("utf-8", "replace")
            logger.warning(
                "%s: ignored output before the stream: %r", self.name, noise[:200]
            )
        del buffer[: found + len(self._expect_preamble)]
        return True

    def _dispatch_buffer(self, buffer):
        offset = 0
        size = HEADER.size
        while len(buffer) - offset >= size:
            kind, channel, length = HEADER.unpack_from(buffer, offset)
            if length > MAX_PAYLOAD:
                raise MuxError(f"frame of {length} bytes exceeds {MAX_PAYLOAD}")
            end = offset + size + length
            if len(buffer) < end:
                break
            self._dispatch(kind, channel, bytes(buffer[offset + size : end]))
            offset = end
        del buffer[:offset]

    def _dispatch(self, kind, number, payload):
        if number == CONTROL:
            self._dispatch_control(kind, payload)
            return
        if kind == OPEN:
            self._accept_channel(number)
            return
        channel = self._channels.get(number)
        if channel is None:
            # Data for a channel we already closed: the peer had not seen our CLOSE yet.
            return
        if kind == DATA:
            if isinstance(channel, MuxStream):
                with self.cond:
                    channel.deliver(payload)
                    self._delivered = True
                    if self._waiting:
                        self.cond.notify_all()
            else:
                channel.deliver(payload)
        elif kind == CLOSE:
            channel.peer_closed()
            with self.cond:
                if self._waiting:
                    self.cond.notify_all()
        else:
            raise MuxError(f"unexpected frame kind {kind} on channel {number}")

    def _dispatch_control(self, kind, payload):
        message = decode_control(payload)
        if kind == PING:
            self.send_control(PONG, message)
            return
        if self._on_control is None:
            return
        self._on_control(kind, message)

    def _accept_channel(self, number):
        if self._on_open is None:
            raise MuxError(
                f"peer opened channel {number}, but this side accepts none"
            )
        kind = MuxStream if self._accept_streams else _Channel
        with self._channels_lock:
            if number in self._channels:
                raise MuxError(f"peer opened channel {number} twice")
            channel = kind(self, number)
            self._channels[number] = channel
        if isinstance(channel, MuxStream):
            with self.cond:
                self._open_streams += 1
            self._on_open(channel)
            return
        channel.start()
        self._on_open(channel.theirs)
