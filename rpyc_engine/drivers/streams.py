"""Blocking byte streams for the threaded driver: sockets, pipes and SSH channels.

Every stream offers ``poll(timeout)`` (is there something to read?), ``read()`` (the bytes
available now, at least one; blocks only when ``poll`` was not true), ``write(data)`` (all of
it), ``close()`` and ``fileno()``. End of stream and I/O errors raise ``ConnectionClosed``;
after ``close()`` every operation raises it too.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
from typing import Any, Optional, Union, cast

from rpyc_engine.protocol.errors import ConnectionClosed

__all__ = ["ChannelStream", "PipeStream", "SocketStream", "Stream"]

# Channel objects allocate the full size requested from recv, so they get a smaller chunk.
_CHANNEL_CHUNK = 64 * 1024
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)

# Bytes asked for per read call: large enough that a multi-MB frame takes few calls.
READ_CHUNK = 256 * 1024
# Receive timeout (SO_RCVTIMEO) of plain sockets: a read that waits at least this long
# blocks in recv itself, which saves the poll() call before it (see read_within).
RECV_SLICE = 0.5


def _read_buffer() -> tuple:
    # Reading into one reused buffer avoids allocating (and, at this size, mmap-ing and
    # unmapping) READ_CHUNK bytes on every read. Only one thread reads at a time.
    buffer = bytearray(READ_CHUNK)
    return buffer, memoryview(buffer)


class Stream:
    """Interface of the streams below (duck-typed: the driver needs only these methods)."""

    closed: bool = False

    def poll(self, timeout: Optional[float]) -> bool:
        raise NotImplementedError

    def read(self) -> bytes:
        raise NotImplementedError

    def read_within(self, timeout: Optional[float]) -> bytes:
        """Return the bytes available within ``timeout`` seconds; ``b""`` if none came."""
        return self.read() if self.poll(timeout) else b""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def fileno(self) -> int:
        raise NotImplementedError

    def quickack(self) -> None:
        """Acknowledge received data at once where the transport supports it."""


class _ReadWaiter:
    """Waits until one file descriptor is readable; used by one reader thread at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.poller: Any = None
        if hasattr(select, "poll"):
            self.poller = select.poll()
            self.poller.register(
                fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
            )

    def wait(self, timeout: Optional[float]) -> bool:
        if self.poller is not None:
            # A closed or invalid fd reports POLLNVAL, which counts as readable so that
            # the following read raises.
            millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
            return bool(self.poller.poll(millis))
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)


def _closed_error(what: str) -> ConnectionClosed:
    return ConnectionClosed(f"{what} is closed")


class SocketStream(Stream):
    """A connected stream socket: TCP (TCP_NODELAY is set), Unix, or TLS-wrapped.

    Args:
        sock: a connected socket; it is switched to blocking mode.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._quickack = False
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._quickack = _QUICKACK is not None
        self.sock = sock
        self.closed = False
        self._fd = sock.fileno()
        self._waiter = _ReadWaiter(self._fd)
        self._buffer, self._view = _read_buffer()
        # A wrapper object (e.g. TLS with bytes read ahead) may define only recv, and
        # its own recv must be used: recv_into would bypass it via attribute delegation.
        self._wrapped = not isinstance(sock, socket.socket)
        self._pending = getattr(sock, "pending", None)  # TLS: bytes decrypted, not read
        # Only a plain socket turns SO_RCVTIMEO into BlockingIOError; TLS would fail.
        self._recv_slice = type(sock) is socket.socket and _set_recv_timeout(sock)

    def __repr__(self) -> str:
        return f"<SocketStream fd={self._fd}{' closed' if self.closed else ''}>"

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        ipv6: bool = False,
        keepalive: Union[bool, int] = False,
        timeout: Optional[float] = 3,
    ) -> SocketStream:
        """Open a TCP connection to ``host:port``.

        Args:
            ipv6: resolve and connect over IPv6.
            keepalive: enable TCP keepalive; an int sets the idle and interval seconds
                (default 60), with 5 probes.
            timeout: seconds to wait for the connection to be established.
        """
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        family, socktype, proto, _, address = infos[0]
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        if keepalive:
            _set_keepalive(sock, 60 if keepalive is True else int(keepalive))
        return cls(sock)

    @classmethod
    def unix_connect(cls, path: str, timeout: Optional[float] = 3) -> SocketStream:
        """Open a connection to the Unix domain socket at ``path``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def fileno(self) -> int:
        return self._fd

    def poll(self, timeout: Optional[float]) -> bool:
        if self.closed:
            raise _closed_error("socket stream")
        if self._pending is not None and self._pending():
            return True
        return self._waiter.wait(timeout)

    def read(self) -> bytes:
        try:
            if self._wrapped:
                data = self.sock.recv(_CHANNEL_CHUNK)
                count = len(data)
            else:
                count = self.sock.recv_into(self._buffer)
        except (socket.timeout, BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            self.close()
            raise ConnectionClosed(f"socket read failed: {exc}") from exc
        if not count:
            self.close()
            raise ConnectionClosed("connection closed by peer")
        return data if self._wrapped else self._view[:count].tobytes()

    def read_within(self, timeout: Optional[float]) -> bytes:
        if self._recv_slice and (timeout is None or timeout >= RECV_SLICE):
            # SO_RCVTIMEO bounds this recv to RECV_SLICE seconds, less than the timeout;
            # close() from another thread wakes it through shutdown().
            if self.closed:
                raise _closed_error("socket stream")
            return self.read()
        return self.read() if self.poll(timeout) else b""

    def write(self, data: bytes) -> None:
        if self.closed:
            raise _closed_error("socket stream")
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            raise ConnectionClosed(f"socket write failed: {exc}") from exc

    def quickack(self) -> None:
        """Send the ACK for data already read now, instead of delaying it (Linux TCP).

        A peer that writes without TCP_NODELAY (stock rpyc) holds back its next frame
        until the previous one is acknowledged, and Linux delays ACKs by up to about
        40 ms. The driver calls this while it still waits for a reply, so such a peer is
        not stalled. It is not called on every read, because immediate ACKs cost an extra
        packet per message.
        """
        if self._quickack:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, cast(int, _QUICKACK), 1)
            except OSError:
                self._quickack = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        # shutdown wakes a thread blocked in poll() on this socket; close alone does not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _set_recv_timeout(sock: socket.socket) -> bool:
    """Set SO_RCVTIMEO to RECV_SLICE; False where the platform refuses it."""
    if sys.platform == "win32":  # takes milliseconds there, not a struct timeval
        return False
    seconds = int(RECV_SLICE)
    micros = int((RECV_SLICE - seconds) * 1e6)
    try:
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros)
        )
    except (OSError, struct.error):
        return False
    return True


def _set_keepalive(sock: socket.socket, seconds: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", seconds),
        ("TCP_KEEPINTVL", seconds),
        ("TCP_KEEPCNT", 5),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _to_fd(end: Any) -> int:
    return end if isinstance(end, int) else end.fileno()


class PipeStream(Stream):
    """Two one-way pipes: ``incoming`` is read, ``outgoing`` is written.

    Args:
        incoming: a readable file descriptor or file object (e.g. a child's stdout).
        outgoing: a writable file descriptor or file object (e.g. a child's stdin).
        owns: close the descriptors on ``close()`` (file objects are closed either way).

    NOTE: file objects are read through their descriptor, so bytes already buffered in
    one (for example after a ``readline()`` on a child's stdout) are skipped; hand the
    pipes over before reading from them.
    """

    def __init__(self, incoming: Any, outgoing: Any, owns: bool = True) -> None:
        self._in_obj, self._out_obj = incoming, outgoing
        self._in = _to_fd(incoming)
        self._out = _to_fd(outgoing)
        self._owns = owns
        self._waiter = _ReadWaiter(self._in)
        self._buffer, self._view = _read_buffer()
        self.closed = False

    def __repr__(self) -> str:
        return f"<PipeStream in={self._in} out={self._out}{' closed' if self.closed else ''}>"

    @classmethod
    def from_std(cls) -> PipeStream:
        """Use this process's stdin and stdout as the stream.

        The descriptors are duplicated for the stream, and descriptors 0 and 1 are pointed
        at ``/dev/null``, so stray prints (from Python or C code) cannot corrupt the frames.
        """
        sys.stdout.flush()
        incoming = os.dup(0)
        outgoing = os.dup(1)
        null_in = os.open(os.devnull, os.O_RDONLY)
        null_out = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null_in, 0)
        os.dup2(null_out, 1)
        os.close(null_in)
        os.close(null_out)
        return cls(incoming, outgoing)

    @classmethod
    def create_pair(cls) -> tuple:
        """Return two streams connected to each other through two OS pipes."""
        read1, write1 = os.pipe()
        read2, write2 = os.pipe()
        return cls(read1, write2), cls(read2, write1)

    def fileno(self) -> int:
        return self._in

    def poll(self, timeout: Optional[float]) -> bool:
        if self.closed:
            raise _closed_error("pipe stream")
        return self._waiter.wait(timeout)

    def read(self) -> bytes:
        try:
            count = os.readv(self._in, [self._buffer])
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            self.close()
            raise ConnectionClosed(f"pipe read failed: {exc}") from exc
        if not count:
            self.close()
            raise ConnectionClosed("pipe closed by peer")
        return self._view[:count].tobytes()

    def write(self, data: bytes) -> None:
        if self.closed:
            raise _closed_error("pipe stream")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._out, view)
                view = view[written:]
        except OSError as exc:
            self.close()
            raise ConnectionClosed(f"pipe write failed: {exc}") from exc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for obj, fd in ((self._in_obj, self._in), (self._out_obj, self._out)):
            try:
                if not isinstance(obj, int):
                    obj.close()
                elif self._owns:
                    os.close(fd)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise


class ChannelStream(Stream):
    """Any object with ``recv``, ``sendall`` and ``close``, such as a paramiko channel.

    ``poll`` uses the channel's ``recv_ready()`` and, when it has one, its ``fileno()``
    (paramiko channels provide a pipe that becomes readable with data).
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.closed = False
        try:
            self._fd: Optional[int] = channel.fileno()
        except (AttributeError, OSError, NotImplementedError):
            self._fd = None
        self._waiter = None if self._fd is None else _ReadWaiter(self._fd)

    def __repr__(self) -> str:
        return f"<ChannelStream {self.channel!r}{' closed' if self.closed else ''}>"

    def fileno(self) -> int:
        if self._fd is None:
            raise OSError(f"channel {self.channel!r} has no file descriptor")
        return self._fd

    def poll(self, timeout: Optional[float]) -> bool:
        if self.closed:
            raise _closed_error("channel stream")
        ready = getattr(self.channel, "recv_ready", None)
        if ready is not None and ready():
            return True
        if self._waiter is None:
            # NOTE: without a file descriptor there is no way to wait with a timeout, so
            # the following read blocks until data arrives.
            return True
        return self._waiter.wait(timeout)

    def read(self) -> bytes:
        try:
            data = self.channel.recv(_CHANNEL_CHUNK)
        except socket.timeout:
            return b""
        except (OSError, EOFError) as exc:
            self.close()
            raise ConnectionClosed(f"channel read failed: {exc}") from exc
        if not data:
            self.close()
            raise ConnectionClosed("channel closed by peer")
        return data

    def write(self, data: bytes) -> None:
        if self.closed:
            raise _closed_error("channel stream")
        try:
            self.channel.sendall(data)
        except (OSError, EOFError) as exc:
            self.close()
            raise ConnectionClosed(f"channel write failed: {exc}") from exc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.channel.close()
        except (OSError, EOFError):
            pass
