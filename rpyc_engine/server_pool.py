"""``ThreadPoolServer``: a server whose fixed set of worker threads serves all clients.

Import it from ``rpyc_engine.server`` or from here. Standard library only, CPython 3.8+.
"""

from __future__ import annotations

import queue
import selectors
import socket
import threading
from typing import Any, Callable, Dict, List, Optional

from rpyc_engine.server import Server, _close_connection_quietly, _close_quietly

__all__ = ["ThreadPoolServer"]


class ThreadPoolServer(Server):
    """A server that serves all clients with ``nbThreads`` worker threads.

    One poller thread watches idle connections. When a client sends data, a worker
    dispatches what can be read without blocking and hands the connection back to the
    poller, so a few threads serve many clients. A request that blocks (a long call,
    or a callback into the client) holds its worker until it returns, so at most
    ``nbThreads`` requests run at once.

    Args:
        nbThreads: number of worker threads (stock rpyc's name and default).
        *args, **kwargs: as for ``Server``.
    """

    def __init__(self, *args: Any, nbThreads: int = 20, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if (
            isinstance(nbThreads, bool)
            or not isinstance(nbThreads, int)
            or nbThreads < 1
        ):
            raise ValueError(f"nbThreads must be an int >= 1, not {nbThreads!r}")
        self.nbThreads = nbThreads
        self._jobs: queue.Queue[Optional[tuple]] = queue.Queue()
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._to_watch: List[tuple] = []
        self._watched: Dict[str, tuple] = {}
        self._poller_done = False

    def listen(self) -> None:
        """Bind and listen, then start the poller and the worker threads."""
        if self._listener is not None:
            return
        super().listen()
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._start_thread(self._poll_loop, "rpyc-pool-poller")
        for number in range(self.nbThreads):
            self._start_thread(self._work_loop, f"rpyc-pool-worker-{number}")

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(
            target=target, name=f"{name} {self.label}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _dispatch(self, connid: str, sock: socket.socket) -> None:
        self._jobs.put(("open", connid, sock, None))

    def _close_workers(self) -> None:
        for _ in range(self.nbThreads):
            self._jobs.put(None)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass

    def _watch(self, connid: str, sock: socket.socket, conn: Any) -> None:
        with self._lock:
            poller_gone = self._poller_done
            if not poller_gone:
                self._to_watch.append((connid, sock, conn))
        if poller_gone:  # close() ran meanwhile and the poller no longer takes work
            self._finish(connid, sock, conn)
        else:
            self._wake()

    # -- poller ---------------------------------------------------------------------

    def _poll_loop(self) -> None:
        try:
            while not self._closed.is_set():
                self._register_new()
                for key, _ in self._selector.select(self.listener_timeout):
                    if key.data is None:
                        self._drain_wake()
                        continue
                    connid, sock, conn = key.data
                    self._selector.unregister(sock)
                    self._watched.pop(connid, None)
                    self._jobs.put(("serve", connid, sock, conn))
        finally:
            with self._lock:
                self._poller_done = True
            self._register_new()
            for connid, sock, conn in list(self._watched.values()):
                self._finish(connid, sock, conn)
            self._selector.close()
            _close_quietly(self._wake_reader)
            _close_quietly(self._wake_writer)

    def _register_new(self) -> None:
        with self._lock:
            batch, self._to_watch = self._to_watch, []
        for item in batch:
            connid, sock, conn = item
            try:
                self._selector.register(sock, selectors.EVENT_READ, item)
            except (ValueError, OSError):  # the socket was closed meanwhile
                self._finish(connid, sock, conn)
                continue
            self._watched[connid] = item

    def _drain_wake(self) -> None:
        try:
            self._wake_reader.recv(4096)
        except OSError:
            pass

    # -- workers --------------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, connid, sock, conn = job
            if self._closed.is_set():
                self._finish(connid, sock, conn)
            elif kind == "open":
                self._open(connid, sock)
            else:
                self._serve_ready(connid, sock, conn)

    def _open(self, connid: str, sock: socket.socket) -> None:
        try:
            conn = self._open_connection(connid, sock)
        except Exception as exc:
            self.logger.warning(
                "server %s: conn %s: setup failed: %s",
                self.label,
                connid,
                exc,
                exc_info=True,
            )
            conn = None
        if conn is None:
            self._finish(connid, sock, None)
            return
        with self._lock:
            sock = self._clients.get(connid, sock)
        self._watch(connid, sock, conn)

    def _serve_ready(self, connid: str, sock: socket.socket, conn: Any) -> None:
        try:
            conn.poll()
        except Exception as exc:
            self.logger.warning(
                "server %s: conn %s: error: %s", self.label, connid, exc, exc_info=True
            )
            self._finish(connid, sock, conn)
            return
        # TLS may hold decrypted bytes that select() cannot see.
        pending = getattr(sock, "pending", None)
        if conn.closed:
            self._finish(connid, sock, conn)
        elif pending is not None and pending():
            self._jobs.put(("serve", connid, sock, conn))
        else:
            self._watch(connid, sock, conn)

    def _finish(self, connid: str, sock: socket.socket, conn: Any) -> None:
        if conn is not None:
            _close_connection_quietly(conn, self.logger)
        self._forget(connid)
        _close_quietly(sock)
        self.logger.info("server %s: conn %s: disconnected", self.label, connid)
