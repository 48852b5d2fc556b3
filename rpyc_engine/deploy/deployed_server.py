"""DeployedServer: start the engine's server on a machine that has only sshd and Python.

One deploy is one remote command: ``/bin/sh -c <probe> … <bootstrap>`` started over SSH
(or locally). The probe picks the interpreter, the bootstrap reads the server part from
stdin and imports it from memory, and the server then serves RPyC connections as
channels multiplexed over the same stdin/stdout. So the deploy opens no port, writes no
file, sends no secret, and its server ends when the SSH session ends.

Compared with stock rpyc's ``DeployedServer``: no TCP listener (stock listens on the
remote loopback, where any local user can connect), no scp, no temp dir, one SSH exec
instead of several, and ``close()`` leaves the caller's machine object open.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, List, Optional, Tuple, Union

from rpyc_engine.deploy import mux
from rpyc_engine.deploy.bootstrap import bootstrap_source, encode_payload
from rpyc_engine.deploy.bundle import server_bundle
from rpyc_engine.deploy.errors import (
    CLOSING,
    CONNECTING,
    FINDING_PYTHON,
    HANDSHAKE,
    STARTING,
    UPLOADING,
    DeployCancelled,
    DeployError,
    Leftover,
    TimeoutExpired,
)
from rpyc_engine.deploy.exit_status import SSH_ERROR, EarlyExit, early_exit_error
from rpyc_engine.deploy.probe import probe_argv, tried_names
from rpyc_engine.deploy.transport import (
    PayloadWriter,
    Transport,
    alias_is_default,
    is_machine,
    machine_alias,
    signal_name,
    start_transport,
)

logger = logging.getLogger(__name__)

DEFAULT_SERVICE = "rpyc_engine.services.classic.SlaveService"
ProgressCallback = Callable[[str, Optional[float], str], None]
# How long close() waits for the remote server to exit when no timeout is given.
CLOSE_WAIT = 5.0


def service_name(service: Union[str, type]) -> str:
    """Return the dotted import name of ``service`` (a class or a dotted string)."""
    if isinstance(service, str):
        if "." not in service:
            raise ValueError(
                f"service {service!r} must be a dotted name like 'pkg.mod.Class'"
            )
        return service
    if isinstance(service, type):
        return f"{service.__module__}.{service.__qualname__}"
    raise TypeError(f"service must be a class or a dotted name, not {service!r}")


class DeployedServer:
    """The engine's server, deployed to ``machine`` for as long as this object is open.

    Args:
        machine: plumbum's ``local``, an ``SshMachine`` or a ``ParamikoMachine``.
            ``close()`` does not close it (stock rpyc does); the caller owns it. It may
            also be a function without arguments that returns such a machine: then it
            is called here (a failure is a `DeployError` in phase ``"connecting"``),
            and the deployment owns that machine and closes it in ``close()``.
        python_executable: interpreter name or path to use on the machine; ``None``
            probes ``python3.14`` … ``python3.8``, ``python3`` and ``python``.
        service: the service the server exposes, as a class or a dotted name. It must
            be importable there, which every class in ``rpyc_engine`` is because the
            bundle contains it.
        progress: called as ``progress(phase, fraction, detail)`` for the phases
            ``"finding-python"``, ``"uploading"``, ``"starting"`` and ``"handshake"``;
            ``fraction`` is ``None`` or 0.0–1.0. Called on the deploying thread.
        connect_timeout: seconds from start to a working server before `TimeoutExpired`.
        heartbeat: seconds between the client's pings; the server exits after
            ``heartbeat_misses`` silent intervals. ``None`` or 0 disables it.
        heartbeat_misses: see ``heartbeat``.
        cancel_event: when set (from any thread), the deploy stops, cleans up and raises
            `DeployCancelled`. ``cancel()`` and ``close()`` set it too.
        alias: name of the machine in logs and errors; default ``str(machine)``.

    Raises:
        DeployError: a step failed. Its ``phase``, ``reason`` and ``hint`` name the
            step, the cause and what to try. `NoPythonError`, `DeployCancelled` and
            `TimeoutExpired` are subclasses. Nothing is left running when it is raised.
    """

    def __init__(
        self,
        machine: Any,
        *,
        python_executable: Any = None,
        service: Union[str, type] = DEFAULT_SERVICE,
        progress: Optional[ProgressCallback] = None,
        connect_timeout: float = 30.0,
        heartbeat: Optional[float] = 5.0,
        heartbeat_misses: int = 4,
        cancel_event: Optional[threading.Event] = None,
        alias: Optional[str] = None,
    ) -> None:
        self._owns_machine = callable(machine) and not is_machine(machine)
        self._machine_factory = machine if self._owns_machine else None
        self.machine = None if self._owns_machine else machine
        self.alias = alias or machine_alias(machine)
        self.service = service_name(service)
        # A plumbum command (as stock rpyc accepts) stands for its executable's path.
        executable = getattr(python_executable, "executable", python_executable)
        self.python_override = None if executable is None else str(executable)
        self.heartbeat = heartbeat or 0.0
        self.heartbeat_misses = heartbeat_misses
        self.remote_pid: Optional[int] = None
        self.python: Optional[str] = None
        self.python_version: Optional[Tuple[int, ...]] = None
        self.leftovers: Tuple[Leftover, ...] = ()
        self._progress = progress
        self._cancel = cancel_event or threading.Event()
        self._lock = threading.Lock()
        self._deploy_done = threading.Event()
        self._hello = threading.Event()
        self._stop_heartbeat = threading.Event()
        self._transport: Optional[Transport] = None
        self._mux: Optional[mux.Multiplexer] = None
        self._connections: List[Any] = []
        self._closed = False
        self._phase = FINDING_PYTHON
        started = time.monotonic()
        try:
            self._deploy(started + connect_timeout, connect_timeout)
        except BaseException as exc:
            self._abort(exc)
            if self._cancel.is_set() and not isinstance(exc, DeployCancelled):
                raise self._cancelled() from exc
            raise
        finally:
            self._deploy_done.set()
        logger.info(
            "%s: deployed in %.2f s (Python %s at %s, server pid %s)",
            self.alias,
            time.monotonic() - started,
            ".".join(map(str, self.python_version or ())),
            self.python,
            self.remote_pid,
        )

    # ------------------------------------------------------------------ public API

    @property
    def local_pid(self) -> Optional[int]:
        """PID of the local child (the ssh client, or the server itself for ``local``)."""
        return self._transport.local_pid if self._transport else None

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran or the deploy failed."""
        return self._closed

    def connect(self, service: Any = None, config: Any = None) -> Any:
        """Open a new RPyC connection to the deployed server.

        Every call opens its own channel on the SSH session; no port or socket file is
        involved. ``service`` is the local service (default ``VoidService``), ``config``
        a ``Config`` or dict for the local side. ``close()`` closes the connection.

        Raises:
            DeployError: the deployment is closed or its SSH session is gone.
        """
        from rpyc_engine.factory import connect_stream
        from rpyc_engine.services.base import VoidService

        stream = self._open(lambda mux_: mux_.open_stream())
        connection = connect_stream(stream, service or VoidService, config)
        with self._lock:
            self._connections = [
                known for known in self._connections if not known.closed
            ]
            self._connections.append(connection)
        return connection

    def open_socket(self) -> Any:
        """Open a new channel and return its local end as a connected ``socket``.

        For a driver other than the threaded one, for example
        ``asyncio.open_connection(sock=deployed.open_socket())`` and then
        ``rpyc_engine.aio.connect_stream``. The caller owns and closes the socket.

        Raises:
            DeployError: the deployment is closed or its SSH session is gone.
        """
        return self._open(lambda mux_: mux_.open_channel())

    def _open(self, opener: Callable[[mux.Multiplexer], Any]) -> Any:
        with self._lock:
            if self._closed or self._mux is None or self._mux.closed.is_set():
                reason = self._mux.close_reason if self._mux else "not deployed"
                raise DeployError(
                    self.alias,
                    CLOSING,
                    f"the deployment is closed ({reason})",
                    hint="Create a new DeployedServer",
                )
            try:
                return opener(self._mux)
            except mux.MuxError as exc:
                raise DeployError(self.alias, CLOSING, str(exc)) from exc

    def classic_connect(self) -> Any:
        """Open a classic-mode connection (``conn.modules``, ``conn.execute``, …)."""
        from rpyc_engine.services.classic import ClassicService

        return self.connect(service=ClassicService)

    def cancel(self) -> None:
        """Stop a deploy running in another thread; it raises `DeployCancelled`."""
        self._cancel.set()
        transport = self._transport
        if transport is not None and not self._deploy_done.is_set():
            # End of file makes the remote side exit, which wakes every wait at once.
            transport.close_stdin()

    def close(self, timeout: Optional[float] = None) -> Tuple[Leftover, ...]:
        """Stop the server, end the local ssh child and check that nothing is left.

        The server is asked to exit and its stdin is closed; then ``close()`` waits for
        the remote command's exit status, which sshd sends only after the server process
        ended. Without that status (ssh killed, connection lost), it checks the server
        PID with ``kill -0`` over a new SSH exec. The local child is always ended before
        ``close()`` returns or raises. Safe to call from any thread, also while
        ``__init__`` is still deploying (that deploy is cancelled), and more than once.

        Args:
            timeout: seconds to wait for the server to exit; ``None`` waits up to 5 s
                and reports instead of raising.

        Returns:
            What was left behind (see `Leftover`), also logged as warnings; empty when
            the server is gone. The same tuple is kept in ``leftovers``.

        Raises:
            TimeoutExpired: ``timeout`` was given and the server did not exit in time;
                its ``leftovers`` lists the remote PID if it still runs.
        """
        if not self._deploy_done.is_set():
            self.cancel()
            # The deploying thread cleans up; if it finished first, close normally below.
            if not self._deploy_done.wait(
                timeout if timeout is not None else CLOSE_WAIT * 2
            ):
                return self.leftovers
        with self._lock:
            if self._closed:
                return self.leftovers
            self._closed = True
        self._stop_heartbeat.set()
        self._close_connections()
        try:
            self.leftovers = self._shutdown(timeout)
        finally:
            self._close_owned_machine()
        return self.leftovers

    def _close_owned_machine(self) -> None:
        if self._owns_machine and self.machine is not None:
            try:
                self.machine.close()
            except Exception as exc:  # closing a broken machine must not hide leftovers
                logger.warning("%s: closing the machine failed: %s", self.alias, exc)

    def __enter__(self) -> DeployedServer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<DeployedServer {self.alias} pid={self.remote_pid} {state}>"

    # ------------------------------------------------------------------ deploy steps

    def _report(self, phase: str, fraction: Optional[float], detail: str) -> None:
        self._phase = phase
        logger.debug("%s: %s %s %s", self.alias, phase, fraction, detail)
        if self._progress is None:
            return
        try:
            self._progress(phase, fraction, detail)
        except Exception:
            logger.exception(
                "%s: progress callback failed in phase %s", self.alias, phase
            )
        # The callback is where a UI usually cancels: stop in the phase it was shown.
        self._check_cancel()

    def _cancelled(self) -> DeployCancelled:
        return DeployCancelled(self.alias, self._phase, "the deploy was cancelled")

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise self._cancelled()

    def _connect_machine(self) -> None:
        assert self._machine_factory is not None
        self._report(CONNECTING, None, "opening the machine")
        try:
            machine = self._machine_factory()
        except Exception as exc:  # plumbum and paramiko raise many unrelated types
            raise DeployError(
                self.alias,
                CONNECTING,
                f"opening the machine failed: {type(exc).__name__}: {exc}",
                hint="Check the host name, port, user and credentials",
            ) from exc
        with self._lock:
            self.machine = machine
        if alias_is_default(self.alias):
            self.alias = machine_alias(machine)

    def _deploy(self, deadline: float, connect_timeout: float) -> None:
        if self._owns_machine:
            self._connect_machine()
        names = tried_names(self.python_override)
        self._report(FINDING_PYTHON, None, "trying " + ", ".join(names))
        self._check_cancel()
        transport = start_transport(
            self.machine,
            probe_argv(bootstrap_source(), self.python_override),
            self.alias,
        )
        with self._lock:
            self._transport = transport
        self._mux = mux.Multiplexer(
            transport.recv,
            transport.write,
            on_control=self._on_control,
            name=f"deploy-{self.alias}",
            expect_preamble=mux.PREAMBLE,
            wait_readable=transport.wait_readable,
        )
        self._mux.start()
        self._check_cancel()
        config = {
            "service": self.service,
            "heartbeat": self.heartbeat,
            "misses": self.heartbeat_misses,
        }
        upload = PayloadWriter(transport, encode_payload(config, server_bundle()))
        self._report(UPLOADING, 0.0, f"{len(upload.payload)} bytes")
        upload.start()
        self._wait_for_hello(upload, deadline, connect_timeout)
        version = ".".join(map(str, self.python_version or ()))
        self._report(
            HANDSHAKE, None, f"Python {version} at {self.python}, pid {self.remote_pid}"
        )
        self._handshake(deadline)
        self._check_cancel()
        if self.heartbeat > 0:
            threading.Thread(
                target=self._send_heartbeats,
                name=f"deploy-heartbeat-{self.alias}",
                daemon=True,
            ).start()

    def _on_control(self, kind: int, message: dict) -> None:
        if kind == mux.HELLO and not self._hello.is_set():
            self.remote_pid = int(message["pid"])
            self.python = str(message.get("python"))
            self.python_version = tuple(message.get("version") or ())
            self._hello.set()

    def _wait_for_hello(
        self, upload: PayloadWriter, deadline: float, connect_timeout: float
    ) -> None:
        assert self._mux is not None
        reported = 0.0
        while not self._hello.wait(0.02):
            self._check_cancel()
            if self._phase == UPLOADING:
                if upload.finished.is_set() and upload.error is None:
                    self._report(UPLOADING, 1.0, f"{upload.sent} bytes")
                    self._report(STARTING, None, "waiting for the server")
                elif upload.sent / len(upload.payload) - reported >= 0.1:
                    reported = upload.sent / len(upload.payload)
                    self._report(UPLOADING, reported, f"{upload.sent} bytes")
            if self._mux.closed.is_set() or upload.error is not None:
                raise self._early_exit_error()
            if time.monotonic() > deadline:
                raise TimeoutExpired(
                    self.alias,
                    self._phase,
                    f"the server did not start within {connect_timeout} s",
                    hint="Check the host's load, or raise connect_timeout",
                    stderr_tail=self._transport.stderr_lines()
                    if self._transport
                    else (),
                )
        if self._phase == UPLOADING:
            self._report(STARTING, None, "server started")

    def _early_exit_error(self) -> DeployError:
        """Build the error for a remote command that ended before the server's HELLO."""
        assert self._transport is not None
        status = self._transport.wait(CLOSE_WAIT)
        self._transport.wait_stderr(1.0)
        return early_exit_error(
            EarlyExit(
                host=self.alias,
                phase=self._phase,
                status=status,
                stderr=self._transport.stderr_lines(),
                service=self.service,
                python_override=self.python_override,
            )
        )

    def _handshake(self, deadline: float) -> None:
        from rpyc_engine.protocol.errors import RPyCError

        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            connection = self.connect()
            try:
                connection.ping(timeout=remaining)
            finally:
                connection.close()
                with self._lock:
                    self._connections.remove(connection)
        except (RPyCError, OSError, EOFError) as exc:
            self._check_cancel()
            raise DeployError(
                self.alias,
                HANDSHAKE,
                f"the server did not reply to a ping: {exc}",
                hint="Read the remote stderr below",
                stderr_tail=self._transport.stderr_lines() if self._transport else (),
            ) from exc

    def _send_heartbeats(self) -> None:
        assert self._mux is not None
        while not self._stop_heartbeat.wait(self.heartbeat):
            if not self._mux.send_control(mux.PING):
                logger.warning(
                    "%s: SSH session lost (%s); the server is gone",
                    self.alias,
                    self._mux.close_reason,
                )
                return

    # ------------------------------------------------------------------ teardown

    def _abort(self, exc: BaseException) -> None:
        """Clean up after a failed or cancelled deploy; log any ``Exception`` caught."""
        with self._lock:
            self._closed = True
        self._stop_heartbeat.set()
        logger.info("%s: deploy failed in phase %s: %s", self.alias, self._phase, exc)
        try:
            self._close_connections()
            self.leftovers = self._shutdown(None)
        except Exception:
            logger.exception("%s: cleanup after the failed deploy failed", self.alias)
        self._close_owned_machine()

    def _close_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception as exc:  # a broken connection is closed anyway
                logger.debug("%s: closing %r: %r", self.alias, connection, exc)

    def _shutdown(self, timeout: Optional[float]) -> Tuple[Leftover, ...]:
        transport = self._transport
        if transport is None:
            return ()
        # On its own thread: a write can block when the remote side stopped reading.
        threading.Thread(
            target=self._request_exit,
            args=(transport,),
            name=f"deploy-close-{self.alias}",
        ).start()
        started = time.monotonic()
        status = transport.wait(CLOSE_WAIT if timeout is None else timeout)
        timed_out = status is None
        if timed_out:
            transport.kill()
            status = transport.wait(CLOSE_WAIT)
        if self._mux is not None:
            self._mux.shutdown("closed by the client")
        leftovers = self._find_leftovers(status, timed_out)
        for leftover in leftovers:
            logger.warning(
                "%s: left behind after close: %s", self.alias, leftover.describe()
            )
        logger.info(
            "%s: closed in %.2f s (%s)",
            self.alias,
            time.monotonic() - started,
            signal_name(status),
        )
        if timed_out and timeout is not None:
            raise TimeoutExpired(
                self.alias,
                CLOSING,
                f"the server did not exit within {timeout} s; the local ssh child was ended",
                leftovers=leftovers,
            )
        return leftovers

    def _request_exit(self, transport: Transport) -> None:
        if self._mux is not None and self._hello.is_set():
            self._mux.send_control(mux.SHUTDOWN)
        transport.close_stdin()

    def _find_leftovers(
        self, status: Optional[int], timed_out: bool
    ) -> Tuple[Leftover, ...]:
        transport = self._transport
        assert transport is not None
        if status is None and transport.local_pid is not None:
            return (Leftover(self.alias, "local-process", pid=transport.local_pid),)
        if transport.local_pid is not None and transport.local_pid == self.remote_pid:
            return ()  # plumbum's local: the server was our child and has been reaped
        clean_exit = not timed_out and status is not None and 0 <= status < SSH_ERROR
        if clean_exit or self.remote_pid is None:
            # sshd sends the exit status only after the server process has ended.
            return ()
        gone = transport.remote_pid_gone(
            self.remote_pid, wait=0 if timed_out else CLOSE_WAIT
        )
        if gone:
            return ()
        kind = "remote-process" if gone is False else "unverified-remote-process"
        return (Leftover(self.alias, kind, pid=self.remote_pid),)
