"""Servers: accept connections on a TCP or Unix socket and serve a service on each.

``ThreadedServer`` serves every client on its own thread; ``ThreadPoolServer`` (in
``rpyc_engine.server_pool``, also importable from here) serves all clients with a fixed
number of worker threads. Both share ``Server``: the listener,
the accept loop, the authenticator hook and the per-connection configuration.

Lifecycle: ``start()`` binds, listens and runs the accept loop on the calling thread
until ``close()``. ``start_in_thread()`` does the same on a background thread and
returns once the socket listens. ``port`` stays ``None`` until then, and the
``listening`` event is set at that moment. ``close()`` stops accepting, shuts every
client socket down and joins the server's threads within a time bound.

An authenticator is a callable ``(sock) -> (sock, credentials)``. It may wrap the socket
(TLS does) and raises ``AuthenticationError`` to reject the client: that client is
dropped with a log line and the server carries on. The credentials and the socket's
``(local, peer)`` endpoints go into that connection's config.

This module is part of the server side: standard library only, CPython 3.8+.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import socket
import stat
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from rpyc_engine.config import Config
from rpyc_engine.connection import Connection
from rpyc_engine.drivers.streams import SocketStream
from rpyc_engine.drivers.threaded import ThreadedDriver
from rpyc_engine.protocol.errors import AuthenticationError

__all__ = ["Server", "ThreadedServer", "ThreadPoolServer", "Authenticator"]  # noqa: F822

Authenticator = Callable[[socket.socket], Tuple[socket.socket, Any]]

_log = logging.getLogger(__name__)


class Server:
    """Base class: listener, accept loop, authentication and client bookkeeping.

    Subclasses decide how accepted clients are served by overriding ``_dispatch``.

    Args:
        service: a service class (a new instance per connection) or instance (shared).
        hostname: address to listen on. ``None`` means loopback only (``127.0.0.1``),
            unlike stock rpyc, which listens on every interface; pass ``"0.0.0.0"`` or
            ``"::"`` to do that.
        port: TCP port; 0 lets the system pick one, readable from ``port`` afterwards.
        backlog: ``listen()`` backlog.
        reuse_addr: set ``SO_REUSEADDR`` so a restarted server can rebind at once.
        authenticator: see the module docstring; ``None`` accepts everyone.
        protocol_config: a ``Config`` (or a dict of its fields) for every connection.
        logger: logger for lifecycle lines; defaults to this module's logger.
        socket_path: listen on this Unix socket path instead of TCP. The file is
            created with mode 0600, so only its owner (and root) can connect; the
            caller chooses a directory that nobody else can write to.
        listener_timeout: seconds between checks of the closed flag in the accept loop.
        ipv6: resolve ``hostname`` as IPv6 (implied when it contains a colon).
    """

    def __init__(
        self,
        service: Any,
        hostname: Optional[str] = None,
        port: int = 0,
        backlog: int = socket.SOMAXCONN,
        reuse_addr: bool = True,
        authenticator: Optional[Authenticator] = None,
        protocol_config: Any = None,
        logger: Optional[logging.Logger] = None,
        socket_path: Optional[str] = None,
        listener_timeout: float = 0.5,
        ipv6: bool = False,
    ) -> None:
        self.service = service
        if hostname is None:
            hostname = "::1" if ipv6 else "127.0.0.1"
        self.hostname = hostname
        self.socket_path = socket_path
        self.backlog = backlog
        self.reuse_addr = reuse_addr
        self.authenticator = authenticator
        self.protocol_config = protocol_config
        self.logger = logger if logger is not None else _log
        self.listener_timeout = listener_timeout
        self.ipv6 = ipv6
        self.listening = threading.Event()
        self._requested_port = port
        self._port: Optional[int] = None
        self._listener: Optional[socket.socket] = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._clients: Dict[str, socket.socket] = {}
        self._threads: set = set()
        self._accept_thread: Optional[threading.Thread] = None
        self._ids = itertools.count(1)

    # -- public API -----------------------------------------------------------------

    @property
    def port(self) -> Optional[int]:
        """The bound TCP port, or ``None`` before the socket listens (and for Unix)."""
        return self._port

    @property
    def label(self) -> str:
        """``host:port`` or the Unix socket path, for log lines."""
        if self.socket_path:
            return self.socket_path
        port = self._port if self._port is not None else self._requested_port
        return f"{self.hostname}:{port}"

    def listen(self) -> None:
        """Bind and listen; publish ``port`` and set ``listening``. Idempotent."""
        if self._listener is not None:
            return
        if self._closed.is_set():
            raise RuntimeError(f"server {self.label} is closed; create a new one")
        if self.socket_path:
            sock = self._listen_unix(self.socket_path)
        else:
            sock = self._listen_tcp()
        sock.settimeout(self.listener_timeout)
        self._listener = sock
        if not self.socket_path:
            self._port = sock.getsockname()[1]
        self.listening.set()
        self.logger.info("server %s: listening (%s)", self.label, type(self).__name__)

    def start(self) -> None:
        """Listen, then accept and serve clients on this thread until ``close()``.

        Ctrl-C (``KeyboardInterrupt``) on this thread also ends it. The server is
        closed whenever this returns or raises.
        """
        self.listen()
        try:
            self._accept_loop()
        except KeyboardInterrupt:
            self.logger.info("server %s: interrupted", self.label)
        finally:
            self.logger.info("server %s: accept loop ended", self.label)
            self.close()

    def start_in_thread(self) -> threading.Thread:
        """Listen, then run the accept loop on a daemon thread and return that thread.

        Raises:
            OSError: binding or listening failed (raised here, on the caller's thread).
        """
        self.listen()
        thread = threading.Thread(
            target=self.start, name=f"rpyc-accept {self.label}", daemon=True
        )
        self._accept_thread = thread
        thread.start()
        return thread

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, shut down client sockets and join threads.

        Args:
            timeout: total seconds to wait for the accept and client threads; threads
                still alive afterwards are logged and left running as daemons.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            # On Linux, shutdown() wakes a thread blocked in accept(), close() does not.
            _shutdown_quietly(listener)
            _close_quietly(listener)
        with self._lock:
            clients = list(self._clients.items())
        for connid, sock in clients:
            self.logger.debug("server %s: conn %s: shutting down", self.label, connid)
            _shutdown_quietly(sock)
        self._close_workers()
        deadline = time.monotonic() + timeout
        pending = [
            t for t in self._all_threads() if t is not threading.current_thread()
        ]
        for thread in pending:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in pending if t.is_alive()]
        if alive:
            self.logger.warning(
                "server %s: %d threads still running after %.1f s: %s",
                self.label,
                len(alive),
                timeout,
                ", ".join(alive),
            )
        if self.socket_path and self.listening.is_set():
            _unlink_quietly(self.socket_path)
        self.logger.info("server %s: stopped", self.label)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- listening ------------------------------------------------------------------

    def _listen_tcp(self) -> socket.socket:
        ipv6 = self.ipv6 or ":" in self.hostname
        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        infos = socket.getaddrinfo(
            self.hostname,
            self._requested_port,
            family,
            socket.SOCK_STREAM,
            0,
            socket.AI_PASSIVE,
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            if self.reuse_addr:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self.backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    def _listen_unix(self, path: str) -> socket.socket:
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # No client can connect before listen(), so this chmod leaves no window.
            os.chmod(path, 0o600)
            sock.listen(self.backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    # -- accepting ------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            listener = self._listener
            if listener is None:
                return
            try:
                sock, peer = listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self._closed.is_set():
                    return
                if exc.errno in (
                    errno.EMFILE,
                    errno.ENFILE,
                    errno.ENOBUFS,
                    errno.ENOMEM,
                ):
                    self.logger.warning("server %s: accept failed: %s", self.label, exc)
                    time.sleep(self.listener_timeout)
                    continue
                raise
            self._accepted(sock, peer)

    def _accepted(self, sock: socket.socket, peer: Any) -> None:
        sock.setblocking(True)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connid = f"{_format_peer(peer)}#{next(self._ids)}"
        self.logger.info("server %s: conn %s: accepted", self.label, connid)
        with self._lock:
            if self._closed.is_set():
                _close_quietly(sock)
                return
            self._clients[connid] = sock
        try:
            self._dispatch(connid, sock)
        except Exception:
            self.logger.exception(
                "server %s: conn %s: cannot start serving", self.label, connid
            )
            self._forget(connid)
            _close_quietly(sock)

    def _dispatch(self, connid: str, sock: socket.socket) -> None:
        raise NotImplementedError

    def _close_workers(self) -> None:
        """Hook for subclasses with worker threads; called by ``close()``."""

    def _all_threads(self) -> list:
        with self._lock:
            threads = list(self._threads)
        if self._accept_thread is not None:
            threads.append(self._accept_thread)
        return threads

    def _forget(self, connid: str) -> None:
        with self._lock:
            self._clients.pop(connid, None)

    # -- one client -----------------------------------------------------------------

    def _authenticate(
        self, connid: str, sock: socket.socket
    ) -> Optional[Tuple[socket.socket, Any]]:
        """Run the authenticator: ``(sock, credentials)``, or ``None`` if rejected."""
        if self.authenticator is None:
            return sock, None
        try:
            new_sock, credentials = self.authenticator(sock)
        except AuthenticationError as exc:
            # A rejected client is a security event that admins want to see by default.
            self.logger.warning(
                "server %s: conn %s: rejected by authenticator: %s",
                self.label,
                connid,
                exc,
            )
            return None
        except Exception:
            self.logger.exception(
                "server %s: conn %s: authenticator failed", self.label, connid
            )
            return None
        if new_sock is not sock:
            with self._lock:
                if connid in self._clients:
                    self._clients[connid] = new_sock
        return new_sock, credentials

    def _open_connection(self, connid: str, sock: socket.socket) -> Any:
        """Authenticate ``sock`` and build its connection; ``None`` if rejected."""
        accepted = self._authenticate(connid, sock)
        if accepted is None:
            return None
        sock, credentials = accepted
        endpoints = _endpoints(sock)
        config = _connection_config(
            self.protocol_config, connid, credentials, endpoints, self.logger
        )
        service = self.service() if isinstance(self.service, type) else self.service
        return Connection(service, ThreadedDriver(SocketStream(sock)), config)

    def _serve_client(self, connid: str, sock: socket.socket) -> None:
        """Serve one client until it disconnects; every error stays with this client."""
        conn = None
        try:
            conn = self._open_connection(connid, sock)
            if conn is not None:
                conn.serve_all()
        except Exception as exc:
            if self._closed.is_set():
                self.logger.debug(
                    "server %s: conn %s: ended by close: %r", self.label, connid, exc
                )
            else:
                self.logger.warning(
                    "server %s: conn %s: error: %s",
                    self.label,
                    connid,
                    exc,
                    exc_info=True,
                )
        finally:
            if conn is not None:
                _close_connection_quietly(conn, self.logger)
            self._forget(connid)
            _close_quietly(sock)
            self.logger.info("server %s: conn %s: disconnected", self.label, connid)


class ThreadedServer(Server):
    """A server that serves each client on its own thread."""

    def _dispatch(self, connid: str, sock: socket.socket) -> None:
        thread = threading.Thread(
            target=self._run_client,
            args=(connid, sock),
            name=f"rpyc-serve {connid}",
            daemon=True,
        )
        # Start under the lock: close() snapshots the set under the same lock, and
        # joining a registered thread that has not started yet raises RuntimeError.
        with self._lock:
            self._threads.add(thread)
            thread.start()

    def _run_client(self, connid: str, sock: socket.socket) -> None:
        try:
            self._serve_client(connid, sock)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())


def _connection_config(
    base: Any, connid: str, credentials: Any, endpoints: Any, logger: logging.Logger
) -> Config:
    """Return the server's protocol config plus this connection's own fields."""
    config = Config.coerce(
        base, connid=connid, credentials=credentials, endpoints=endpoints
    )
    if config.logger is None:
        config = config.replace(logger=logger)
    return config


def _endpoints(sock: socket.socket) -> Tuple[Any, Any]:
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    return (sock.getsockname(), peer)


def _format_peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
        return f"{host}:{peer[1]}"
    return "unix"


def _remove_stale_socket(path: str) -> None:
    """Remove a leftover socket file at ``path``; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(
            errno.EEXIST,
            "path exists and is not a socket; choose another --unix path",
            path,
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another server is listening on this socket", path)


def _close_connection_quietly(conn: Any, logger: logging.Logger) -> None:
    try:
        conn.close()
    except Exception as exc:  # the peer is gone or the stream already closed
        logger.debug("connection close after serving failed: %r", exc)


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def __getattr__(name: str) -> Any:
    # ThreadPoolServer lives in its own module, which imports this one.
    if name == "ThreadPoolServer":
        from rpyc_engine.server_pool import ThreadPoolServer

        return ThreadPoolServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
