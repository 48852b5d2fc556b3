"""Channel multiplexer that carries several byte streams over one SSH session's stdio.

A deployed server talks to its client only through the stdin and stdout of the process
that SSH (or a local subprocess) started, so no port is ever opened. This module cuts that
one duplex byte stream into numbered channels. Channel 0 carries control messages (hello,
heartbeat, shutdown); every other channel carries one RPyC connection. Each side hands an
RPyC connection one end of a ``socket.socketpair()`` and pumps the other end through the
multiplexer, so the engine gets an ordinary connected socket that no other process can
reach.

A frame is a 9-byte header ``kind (u8), channel (u32), length (u32)``, big-endian, followed
by ``length`` payload bytes. ``CLOSE`` on a channel means its sender will send no more data
there (a half-close); control payloads are UTF-8 JSON objects.

This module is part of the server part that is uploaded to remote hosts: it must run on
CPython 3.8 and newer and import only the standard library.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Optional

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
# Largest payload the pump puts in one DATA frame, and the largest one accepted.
CHUNK_SIZE = 256 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024
# The server writes this before its first frame. A login script that prints to stdout
# (a .bashrc echo) puts text ahead of it, which the client skips, up to MAX_NOISE bytes.
PREAMBLE = b"\x00rpyc-deploy-stream\x00"
MAX_NOISE = 64 * 1024


class MuxError(Exception):
    """The multiplexed stream is corrupt or closed."""


def encode_control(message: Dict[str, Any]) -> bytes:
    """Encode a control payload as compact UTF-8 JSON."""
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
    """One multiplexed channel: our end of a socketpair plus its two pump threads."""

    def __init__(self, mux: Multiplexer, number: int) -> None:
        self.mux = mux
        self.number = number
        self.ours, self.theirs = socket.socketpair()
        self.incoming: queue.Queue[Optional[bytes]] = queue.Queue()
        self.sent_close = False
        self.got_close = False
        self._running = 2
        self._running_lock = threading.Lock()
        name = f"{mux.name}-ch{number}"
        self._writer = threading.Thread(target=self._write_loop, name=name + "-in")
        self._reader = threading.Thread(target=self._read_loop, name=name + "-out")
        self._writer.daemon = True
        self._reader.daemon = True

    def start(self) -> None:
        self._writer.start()
        self._reader.start()

    def _write_loop(self) -> None:
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

    def _thread_done(self) -> None:
        # The last of the two pump threads closes our end, so no queued data is lost.
        with self._running_lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.ours.close()

    def _read_loop(self) -> None:
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

    def peer_closed(self) -> None:
        self.got_close = True
        self.incoming.put(None)
        self.mux.forget_if_done(self)

    def abort(self) -> None:
        """Cut the channel because the multiplexed stream is gone."""
        self.incoming.put(None)
        for sock in (self.ours, self.theirs):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Multiplexer:
    """Both ends of the channel protocol over one duplex byte stream.

    Args:
        recv: returns up to ``n`` bytes, ``b""`` at end of stream; called from one thread.
        write: writes all of ``data``; raises ``OSError`` when the stream is broken.
        on_open: called as ``on_open(socket)`` when the peer opens a channel; ``None``
            makes peer-opened channels an error (the client side).
        on_control: called as ``on_control(kind, message)`` for control frames other than
            PING, to which the multiplexer replies itself.
        name: prefix for thread names and log lines.
        expect_preamble: bytes the peer sends before its first frame; everything before
            them is logged and dropped. ``None`` expects frames from the first byte.
    """

    def __init__(
        self,
        recv: Callable[[int], bytes],
        write: Callable[[bytes], Any],
        on_open: Optional[Callable[[socket.socket], None]] = None,
        on_control: Optional[Callable[[int, Dict[str, Any]], None]] = None,
        name: str = "mux",
        expect_preamble: Optional[bytes] = None,
    ) -> None:
        self.name = name
        self._expect_preamble = expect_preamble
        self._recv = recv
        self._write = write
        self._on_open = on_open
        self._on_control = on_control
        self._write_lock = threading.Lock()
        self._channels: Dict[int, _Channel] = {}
        self._channels_lock = threading.Lock()
        self._next_channel = 1
        self.closed = threading.Event()
        self.close_reason = ""
        self.last_received = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=name + "-demux")
        self._thread.daemon = True

    def start(self) -> None:
        """Start the thread that reads and dispatches frames."""
        self._thread.start()

    def run(self) -> None:
        """Read and dispatch frames on the calling thread until the stream ends."""
        self._run()

    def send_frame(self, kind: int, channel: int, payload: bytes = b"") -> bool:
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

    def open_channel(self) -> socket.socket:
        """Open a new channel and return the socket the RPyC connection should use."""
        with self._channels_lock:
            number = self._next_channel
            self._next_channel += 1
            channel = _Channel(self, number)
            self._channels[number] = channel
        if not self.send_frame(OPEN, number):
            channel.abort()
            channel.ours.close()
            channel.theirs.close()
            raise MuxError(f"{self.name}: stream closed ({self.close_reason})")
        channel.start()
        return channel.theirs

    def forget_if_done(self, channel: _Channel) -> None:
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

    def _run(self) -> None:
        buffer = bytearray()
        synced = self._expect_preamble is None
        try:
            while not self.closed.is_set():
                chunk = self._recv(CHUNK_SIZE + HEADER.size)
                if not chunk:
                    self.shutdown("end of stream")
                    return
                self.last_received = time.monotonic()
                buffer += chunk
                if not synced:
                    synced = self._skip_to_preamble(buffer)
                if synced:
                    self._dispatch_buffer(buffer)
        except Exception as exc:
            # Also a failing on_open/on_control callback: never leave the peer hanging.
            self.shutdown(f"{type(exc).__name__}: {exc}")

    def _skip_to_preamble(self, buffer: bytearray) -> bool:
        """Drop what precedes the preamble (a login script's output); True once found."""
        assert self._expect_preamble is not None
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

    def _dispatch_buffer(self, buffer: bytearray) -> None:
        offset = 0
        while len(buffer) - offset >= HEADER.size:
            kind, channel, length = HEADER.unpack_from(buffer, offset)
            if length > MAX_PAYLOAD:
                raise MuxError(f"frame of {length} bytes exceeds {MAX_PAYLOAD}")
            end = offset + HEADER.size + length
            if len(buffer) < end:
                break
            self._dispatch(kind, channel, bytes(buffer[offset + HEADER.size : end]))
            offset = end
        del buffer[:offset]

    def _dispatch(self, kind: int, number: int, payload: bytes) -> None:
        if number == CONTROL:
            self._dispatch_control(kind, payload)
            return
        if kind == OPEN:
            self._accept_channel(number)
            return
        with self._channels_lock:
            channel = self._channels.get(number)
        if channel is None:
            # Data for a channel we already closed: the peer had not seen our CLOSE yet.
            return
        if kind == DATA:
            channel.incoming.put(payload)
        elif kind == CLOSE:
            channel.peer_closed()
        else:
            raise MuxError(f"unexpected frame kind {kind} on channel {number}")

    def _dispatch_control(self, kind: int, payload: bytes) -> None:
        message = decode_control(payload)
        if kind == PING:
            self.send_control(PONG, message)
            return
        if self._on_control is None:
            return
        self._on_control(kind, message)

    def _accept_channel(self, number: int) -> None:
        if self._on_open is None:
            raise MuxError(f"peer opened channel {number}, but this side accepts none")
        with self._channels_lock:
            if number in self._channels:
                raise MuxError(f"peer opened channel {number} twice")
            channel = _Channel(self, number)
            self._channels[number] = channel
        channel.start()
        self._on_open(channel.theirs)
