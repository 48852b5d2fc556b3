"""Main program of a deployed server: serves RPyC connections over its own stdin/stdout.

The bootstrap (``rpyc_engine.deploy.bootstrap``) imports this module from the in-memory
bundle and calls `main`. The server never listens on any socket: every connection arrives
as a channel of the multiplexed stdio stream (``rpyc_engine.deploy.mux``), which the
connection's own thread reads and writes. The process exits, and takes nothing with it because it
wrote no file, when any of these happens:

* the client sends SHUTDOWN;
* stdin reaches end of file, or writing to stdout fails (the SSH session is gone);
* nothing arrives for ``heartbeat * misses`` seconds (the client stopped pinging).

This module is part of the server part that is uploaded to remote hosts: it must run on
CPython 3.8 and newer and import only the standard library and the engine.
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import sys
import threading
import time

from rpyc_engine.deploy import mux

logger = logging.getLogger(__name__)

# Exit statuses the client maps to causes (see rpyc_engine.deploy.exit_status).
EXIT_SHUTDOWN = 0
EXIT_HEARTBEAT = 3
EXIT_SERVICE = 4


def resolve_service(name: str) -> type:
    """Import ``package.module.ClassName`` and return the class."""
    module_name, _, class_name = name.rpartition(".")
    if not module_name:
        raise ValueError(
            f"service {name!r} is not a dotted name like 'pkg.module.Class'"
        )
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ValueError(
            f"module {module_name!r} has no attribute {class_name!r}"
        ) from None


class _Server:
    """State of one deployed server process."""

    def __init__(self, in_fd: int, out_fd: int, config: dict) -> None:
        self.service = resolve_service(config["service"])
        self.heartbeat = float(config.get("heartbeat") or 0)
        self.misses = int(config.get("misses") or 4)
        self.stop_reason = ""
        self.exit_status = EXIT_SHUTDOWN
        self.stopped = threading.Event()
        self._out_fd = out_fd
        self._connections = 0
        self._in_fd = in_fd
        self._poller = select.poll()
        self._poller.register(in_fd, select.POLLIN | select.POLLHUP)
        self.mux = mux.Multiplexer(
            recv=self._recv,
            write=self._write_all,
            on_open=self._serve_channel,
            on_control=self._on_control,
            name="deployed",
            wait_readable=self._wait_readable,
            accept_streams=True,
        )

    def _recv(self, size: int) -> bytes:
        try:
            return os.read(self._in_fd, size)
        except OSError:
            return b""

    def _wait_readable(self, timeout: object) -> bool:
        millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return bool(self._poller.poll(millis))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._out_fd, view)
            view = view[written:]

    def write_preamble(self) -> None:
        self._write_all(mux.PREAMBLE)

    def _on_control(self, kind: int, message: dict) -> None:
        if kind == mux.SHUTDOWN:
            self.stop("shutdown requested by the client", EXIT_SHUTDOWN)

    def _serve_channel(self, stream: mux.MuxStream) -> None:
        self._connections += 1
        thread = threading.Thread(
            target=self._serve_connection,
            args=(stream, self._connections),
            name=f"deployed-conn{self._connections}",
        )
        thread.daemon = True
        thread.start()

    def _serve_connection(self, stream: mux.MuxStream, number: int) -> None:
        from rpyc_engine.config import Config
        from rpyc_engine.factory import connect_stream

        connection = None
        try:
            config = Config(connid=f"deployed-{number}")
            connection = connect_stream(stream, self.service, config)
            connection.serve_all()
        except Exception as exc:  # one broken connection must not end the server
            logger.debug("connection %d ended: %r", number, exc)
        finally:
            if connection is not None:
                try:
                    connection.close()
                except Exception:  # already broken; the channel is closed below
                    pass
            stream.close()

    def stop(self, reason: str, status: int) -> None:
        if not self.stopped.is_set():
            self.stop_reason = reason
            self.exit_status = status
            self.stopped.set()

    def watch_heartbeat(self) -> None:
        limit = self.heartbeat * self.misses
        while not self.stopped.wait(self.heartbeat):
            silent = time.monotonic() - self.mux.last_received
            if silent > limit:
                self.stop(f"no heartbeat for {silent:.1f} s", EXIT_HEARTBEAT)

    def watch_stream(self) -> None:
        self.mux.closed.wait()
        self.stop(f"stdio stream closed ({self.mux.close_reason})", EXIT_SHUTDOWN)


def _start_thread(target: object, name: str) -> None:
    thread = threading.Thread(target=target, name=name)
    thread.daemon = True
    thread.start()


def main(in_fd: int, out_fd: int, config: dict) -> None:
    """Serve until the client goes away, then end the process.

    Args:
        in_fd: a duplicate of the original stdin, positioned right after the bundle.
        out_fd: a duplicate of the original stdout; fd 1 already points at stderr, so
            ``print`` in served code cannot corrupt the stream.
        config: ``service`` (dotted class name), ``heartbeat`` (seconds, 0 disables),
            ``misses`` (silent heartbeat intervals before exiting).
    """
    try:
        server = _Server(in_fd, out_fd, config)
    except Exception as exc:
        sys.stderr.write(
            f"rpyc-deploy: cannot load service {config.get('service')!r}: {exc!r}\n"
        )
        sys.stderr.flush()
        os._exit(EXIT_SERVICE)
    hello = {
        "pid": os.getpid(),
        "python": sys.executable,
        "version": list(sys.version_info[:3]),
    }
    server.write_preamble()
    server.mux.send_control(mux.HELLO, hello)
    server.mux.start()
    _start_thread(server.watch_stream, "deployed-stream-watch")
    if server.heartbeat > 0:
        _start_thread(server.watch_heartbeat, "deployed-heartbeat")
    server.stopped.wait()
    server.mux.shutdown(server.stop_reason)
    sys.stderr.write(f"rpyc-deploy: server {os.getpid()} exits: {server.stop_reason}\n")
    sys.stderr.flush()
    # Served code may have left non-daemon threads behind; they must not keep us alive.
    os._exit(server.exit_status)
