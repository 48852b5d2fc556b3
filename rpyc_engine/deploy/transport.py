"""Transports: one duplex byte stream to a process started on the target machine.

A transport wraps either a local child process (``ssh`` for a plumbum ``SshMachine``, or
``/bin/sh`` itself for plumbum's ``local``) or a paramiko exec channel (for a
``ParamikoMachine``). It exposes the stream as ``recv``/``write``/``close_stdin``, collects
the remote stderr in the background, waits for the remote command's exit status and ends
the local side.

plumbum is imported only inside functions, so importing ``rpyc_engine.deploy`` works
without plumbum installed.
"""

from __future__ import annotations

import abc
import collections
import functools
import logging
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from typing import Any, Deque, List, Optional, Sequence

logger = logging.getLogger(__name__)

STDERR_KEEP = 200
KILL_GRACE = 1.0
UPLOAD_CHUNK = 64 * 1024


class Transport(abc.ABC):
    """A started remote command whose stdin/stdout carry the deploy stream."""

    alias: str
    # PID of the local child (ssh or the local server itself); None for paramiko.
    local_pid: Optional[int] = None

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self._stderr: Deque[str] = collections.deque(maxlen=STDERR_KEEP)
        self._stderr_done = threading.Event()

    @abc.abstractmethod
    def recv(self, size: int) -> bytes:
        """Return up to ``size`` bytes of the remote stdout; ``b""`` at end of stream."""

    @abc.abstractmethod
    def wait_readable(self, timeout: Optional[float]) -> bool:
        """Return whether `recv` has data or end of stream within ``timeout`` seconds."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the remote stdin; raises ``OSError`` when broken."""

    @abc.abstractmethod
    def close_stdin(self) -> None:
        """Send end of file on the remote stdin; I/O errors are ignored."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> Optional[int]:
        """Return the exit status, or None if still running after ``timeout`` seconds."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End the local side now (the ssh client, the local server, or the channel)."""

    @abc.abstractmethod
    def run_check(self, command: str, timeout: float) -> Optional[int]:
        """Run a short shell ``command`` on the target; return its status or None."""

    def remote_pid_gone(self, pid: int, wait: float) -> Optional[bool]:
        """Return whether ``pid`` has ended on the target, checking for up to ``wait`` s.

        Runs ``kill -0`` in a loop over a new exec. Returns None when the check itself
        failed (the host is unreachable, for example), so nothing is known.
        """
        rounds = int(wait / 0.2)
        script = (
            f"i=0; while kill -0 {int(pid)} 2>/dev/null; do "
            f'[ "$i" -ge {rounds} ] && exit 1; i=$((i+1)); sleep 0.2; done; exit 0'
        )
        status = self.run_check(script, timeout=wait + 10)
        if status in (0, 1):
            return status == 0
        return None

    def stderr_lines(self) -> List[str]:
        """Return the remote stderr lines kept so far (the last `STDERR_KEEP`)."""
        return list(self._stderr)

    def wait_stderr(self, timeout: float) -> None:
        """Wait until the remote stderr reached end of file, at most ``timeout`` seconds."""
        self._stderr_done.wait(timeout)

    def _collect_stderr(self, read: Any) -> None:
        pending = b""
        try:
            while True:
                chunk = read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._keep_line(line)
        except (OSError, ValueError, EOFError):
            pass
        if pending:
            self._keep_line(pending)
        self._stderr_done.set()

    def _keep_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self._stderr.append(line)
        logger.debug("%s: remote stderr: %s", self.alias, line)

    def _start_stderr_thread(self, read: Any) -> None:
        thread = threading.Thread(
            target=self._collect_stderr,
            args=(read,),
            name=f"deploy-stderr-{self.alias}",
        )
        thread.daemon = True
        thread.start()


class SubprocessTransport(Transport):
    """A local child process: ``ssh … /bin/sh -c …`` or ``/bin/sh -c …`` itself."""

    def __init__(self, alias: str, process: Any, start_check: Any) -> None:
        super().__init__(alias)
        self._process = process
        self._start_check = start_check
        self.local_pid = process.pid
        self._stdout_fd = process.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._stdout_fd, select.POLLIN | select.POLLHUP)
        self._start_stderr_thread(process.stderr.read)

    def recv(self, size: int) -> bytes:
        try:
            data = os.read(self._stdout_fd, size)
        except OSError:
            data = b""
        if not data:
            # Closed here, by the one reader, and never in kill(): a descriptor closed
            # under a reader that waits in poll() may be reused by another file.
            # NOTE: when the multiplexer stops before reading end of file (a failed
            # write), the pipe stays open until the Popen object is collected.
            self._process.stdout.close()
        return data

    def wait_readable(self, timeout: Optional[float]) -> bool:
        millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        # A closed descriptor reports POLLNVAL: readable, and the read then ends it.
        return bool(self._poller.poll(millis))

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._process.stdin.write(view)
            view = view[written:]

    def close_stdin(self) -> None:
        try:
            self._process.stdin.close()
        except OSError:
            pass

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self._process.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            if self.wait(KILL_GRACE) is None:
                # SIGTERM stays pending on a stopped process; SIGKILL does not.
                self._process.kill()
                self._process.wait()
        try:
            self._process.stdin.close()
        except OSError:
            pass

    def run_check(self, command: str, timeout: float) -> Optional[int]:
        try:
            process = self._start_check(command)
        except OSError as exc:
            logger.warning("%s: check command failed to start: %s", self.alias, exc)
            return None
        try:
            process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            logger.warning(
                "%s: check command timed out after %.1f s", self.alias, timeout
            )
            return None
        return process.returncode


class ParamikoTransport(Transport):
    """An exec channel on a paramiko transport; the ssh connection is the machine's."""

    def __init__(self, alias: str, machine: Any, popen: Any) -> None:
        super().__init__(alias)
        self._machine = machine
        # Keep the ParamikoPopen alive: collecting its stdin file shuts the channel's
        # write side down (paramiko's ChannelStdinFile.close does that).
        self._popen = popen
        self._channel = popen.channel
        self._start_stderr_thread(self._channel.recv_stderr)

    def recv(self, size: int) -> bytes:
        return self._channel.recv(size)

    def wait_readable(self, timeout: Optional[float]) -> bool:
        channel = self._channel
        if channel.recv_ready() or channel.eof_received or channel.closed:
            return True
        readable, _, _ = select.select([channel], [], [], timeout)
        return bool(readable)

    def write(self, data: bytes) -> None:
        if self._channel.closed:
            raise BrokenPipeError("the SSH channel is closed")
        self._channel.sendall(data)

    def close_stdin(self) -> None:
        try:
            self._channel.shutdown_write()
        except (OSError, EOFError):
            pass

    def wait(self, timeout: float) -> Optional[int]:
        deadline = time.monotonic() + timeout
        while not self._channel.exit_status_ready():
            if self._channel.closed or time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return self._channel.recv_exit_status()

    def kill(self) -> None:
        self._channel.close()

    def run_check(self, command: str, timeout: float) -> Optional[int]:
        try:
            popen = _paramiko_exec(self._machine, ["/bin/sh", "-c", command])
        except Exception as exc:  # paramiko raises SSHException and socket errors
            logger.warning("%s: check command failed: %s", self.alias, exc)
            return None
        channel = popen.channel
        try:
            channel.shutdown_write()
            deadline = time.monotonic() + timeout
            while not channel.exit_status_ready():
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.01)
            return channel.recv_exit_status()
        finally:
            channel.close()


class PayloadWriter(threading.Thread):
    """Writer of the deploy payload, on its own thread so the deploy thread stays free."""

    def __init__(self, transport: Transport, payload: bytes) -> None:
        super().__init__(name=f"deploy-upload-{transport.alias}", daemon=True)
        self.transport = transport
        self.payload = payload
        self.sent = 0
        self.error: Optional[BaseException] = None
        self.finished = threading.Event()

    def run(self) -> None:
        try:
            for start in range(0, len(self.payload), UPLOAD_CHUNK):
                self.transport.write(self.payload[start : start + UPLOAD_CHUNK])
                self.sent = min(start + UPLOAD_CHUNK, len(self.payload))
        except Exception as exc:
            # OSError, or paramiko's SSHException on a dead channel.
            self.error = exc
        finally:
            self.finished.set()


def machine_alias(machine: Any) -> str:
    """Return a short name for log lines and errors: ``ssh://user@host``, ``local``.

    A machine factory (a function that returns a machine) is named after the function
    until the machine exists.
    """
    if _is_local(machine):
        return "local"
    if is_machine(machine):
        return str(machine)
    if isinstance(machine, functools.partial):
        # Only the host, port and user: other arguments may hold a password.
        shown = [repr(arg) for arg in machine.args if isinstance(arg, (str, int))]
        shown += [
            f"{key}={machine.keywords[key]!r}"
            for key in ("host", "user", "port")
            if key in machine.keywords
        ]
        name = getattr(machine.func, "__qualname__", "factory")
        return f"{_FACTORY_PREFIX}{name}({', '.join(shown)})>"
    return (
        f"{_FACTORY_PREFIX}{getattr(machine, '__qualname__', type(machine).__name__)}>"
    )


_FACTORY_PREFIX = "<machine from "


def alias_is_default(alias: str) -> bool:
    """Return True for the provisional alias `machine_alias` gives a machine factory."""
    return alias.startswith(_FACTORY_PREFIX)


def is_machine(machine: Any) -> bool:
    """Return True for a plumbum machine this package can deploy to."""
    return _is_local(machine) or _is_paramiko(machine) or _is_ssh(machine)


def _is_local(machine: Any) -> bool:
    try:
        from plumbum.machines.local import LocalMachine
    except ImportError:
        return False
    return isinstance(machine, LocalMachine)


def _is_paramiko(machine: Any) -> bool:
    try:
        from plumbum.machines.paramiko_machine import ParamikoMachine
    except ImportError:
        return False
    return isinstance(machine, ParamikoMachine)


def _is_ssh(machine: Any) -> bool:
    try:
        from plumbum.machines.ssh_machine import SshMachine
    except ImportError:
        return False
    return isinstance(machine, SshMachine)


def _paramiko_exec(machine: Any, argv: Sequence[str]) -> Any:
    """Open an exec channel running ``argv``; return the ``ParamikoPopen``.

    Its ``channel`` is driven directly; its file objects are not used.
    """
    return machine.popen(machine[argv[0]][tuple(argv[1:])])


def start_transport(machine: Any, argv: Sequence[str], alias: str) -> Transport:
    """Start ``argv`` on ``machine`` with piped stdio and return its transport.

    ``argv[0]`` must be an absolute path, so no PATH lookup (and no extra round trip)
    is needed to start it.

    Raises:
        TypeError: ``machine`` is not plumbum's ``local``, an ``SshMachine`` or a
            ``ParamikoMachine``.
    """
    if _is_local(machine):
        process = machine[argv[0]][tuple(argv[1:])].popen(new_session=True, bufsize=0)

        def start_local_check(command: str) -> Any:
            return machine["/bin/sh"]["-c", command].popen(stdin=subprocess.DEVNULL)

        return SubprocessTransport(alias, process, start_local_check)
    if _is_paramiko(machine):
        # NOTE: a ParamikoMachine made with get_pty=True gives its exec channels a pty,
        # which mangles the binary stream; such a machine cannot deploy.
        return ParamikoTransport(alias, machine, _paramiko_exec(machine, argv))
    if _is_ssh(machine):
        quoted = [shlex.quote(arg) for arg in argv]
        process = machine.popen(quoted, ssh_opts=["-T"], new_session=True, bufsize=0)

        def start_ssh_check(command: str) -> Any:
            check = ["/bin/sh", "-c", shlex.quote(command)]
            return machine.popen(check, ssh_opts=["-T"], stdin=subprocess.DEVNULL)

        return SubprocessTransport(alias, process, start_ssh_check)
    raise TypeError(
        f"cannot deploy to {machine!r}: expected plumbum's local, an SshMachine or a "
        "ParamikoMachine"
    )


def signal_name(status: Optional[int]) -> str:
    """Describe an exit status, naming the signal for a negative one."""
    if status is None:
        return "still running"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"
