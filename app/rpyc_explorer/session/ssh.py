"""OpenSSH command lines for one session: host-key enforcement, askpass, multiplexing.

Every ssh the session starts (the authenticating master, plumbum's commands, the
deploy, cleanup checks) gets the same options, so:

- `StrictHostKeyChecking=yes` makes ssh itself refuse any key the user did not
  approve, because `UserKnownHostsFile` lists only the app's file, the user's
  read-only files and the session's accept-once file. `UpdateHostKeys=no` keeps
  ssh from writing to `~/.ssh/known_hosts`;
- `ControlMaster=auto` with a ControlPath in the session's 0700 directory lets the
  user authenticate once, and every later ssh reuses that connection;
- prompts go to the askpass server through the environment, never a terminal.

A jump host is reached through a ProxyCommand script in the same directory that
runs ssh with the jump host's own options and askpass token.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..machines.record import Machine
from .askpass import SessionDir

logger = logging.getLogger(__name__)

SSH = "ssh"
CONTROL_PERSIST_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 15
_MASTER_PID = re.compile(r"pid=(\d+)")


class SshCommandError(Exception):
    """An ssh command failed; `stderr` contains its last lines (never a secret)."""

    def __init__(self, message: str, status: int | None, stderr: str) -> None:
        super().__init__(message)
        self.status = status
        self.stderr = stderr


class SshNotFoundError(SshCommandError):
    """The `ssh` program is not on PATH, or the file found there is not executable."""


@dataclass(frozen=True)
class ResolvedHost:
    """The destination OpenSSH connects to after applying `~/.ssh/config` (`ssh -G`)."""

    hostname: str
    port: int
    user: str
    proxy_jump: str


@dataclass(frozen=True)
class JumpHost:
    """A ProxyJump value split into its parts: `[user@]host[:port]`, first hop only."""

    user: str
    host: str
    port: int | None
    rest: str

    @classmethod
    def parse(cls, spec: str) -> JumpHost:
        """Parse the first hop of a ProxyJump value; later hops stay in `rest`."""
        first, _, rest = spec.partition(",")
        if first.startswith("ssh://"):
            first = first[len("ssh://") :]
        user, _, hostport = first.rpartition("@")
        host, port = hostport, None
        if hostport.startswith("["):
            host, _, tail = hostport[1:].partition("]")
            port = int(tail[1:]) if tail.startswith(":") else None
        elif hostport.count(":") == 1:
            host, port_text = hostport.split(":")
            port = int(port_text)
        return cls(user, host, port, rest)


class SshLink:
    """The ssh options and the master connection for one hop of one session.

    Args:
        machine: the machine (for a jump host, a record built from the spec).
        directory: the session's private directory.
        known_files: files for `UserKnownHostsFile`, app file first.
        env: askpass variables for this hop's ssh processes.
        jump: the link to the jump host, or None to connect directly.
        name: "target" or "jump"; names the ControlPath and the proxy script.
        restrict_auth: limit authentication to the machine's `auth` method;
            False lets OpenSSH try its usual methods (used for jump hosts).
    """

    def __init__(
        self,
        machine: Machine,
        directory: SessionDir,
        known_files: Sequence[Path],
        env: Mapping[str, str],
        jump: SshLink | None = None,
        name: str = "target",
        restrict_auth: bool = True,
    ) -> None:
        self.machine = machine
        self.directory = directory
        self.known_files = list(known_files)
        self.env = dict(env)
        self.jump = jump
        self.name = name
        self.restrict_auth = restrict_auth
        self.master_pid: int | None = None

    # -- command lines -------------------------------------------------------------

    def options(self, control: bool = True) -> list[str]:
        """Return the `-o`, `-p`, `-l` and `-i` options for this hop."""
        known = " ".join(f'"{path}"' for path in self.known_files)
        opts = [
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known}",
            "-o", "UpdateHostKeys=no",
            "-o", "BatchMode=no",
            "-o", "NumberOfPasswordPrompts=1",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}",
            "-o", "ServerAliveInterval=15",
        ]  # fmt: skip
        if control:
            opts += [
                "-o", "ControlMaster=auto",
                "-o", f"ControlPath={self.directory.path}/cm-{self.name}-%C",
                "-o", f"ControlPersist={CONTROL_PERSIST_SECONDS}",
            ]  # fmt: skip
        if self.restrict_auth:
            opts += self._auth_options()
        if self.machine.port is not None:
            opts += ["-p", str(self.machine.port)]
        if self.machine.user:
            opts += ["-l", self.machine.user]
        if self.jump is not None:
            opts += ["-o", f"ProxyCommand={self.jump.proxy_script()}"]
        return opts

    def _auth_options(self) -> list[str]:
        machine = self.machine
        if machine.auth == "password":
            return [
                "-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "PubkeyAuthentication=no",
            ]  # fmt: skip
        if machine.auth == "key":
            key = os.path.expanduser(machine.key_path)
            return [
                "-i", key,
                "-o", "IdentitiesOnly=yes",
                "-o", "PreferredAuthentications=publickey",
            ]  # fmt: skip
        return ["-o", "PreferredAuthentications=publickey"]

    def argv(self, *command: str, control: bool = True) -> list[str]:
        """Return a full ssh argv that runs `command` on this hop's host."""
        return [SSH, *self.options(control), "--", self.machine.host, *command]

    def process_env(self) -> dict[str, str]:
        """Return the environment for this hop's ssh processes."""
        env = dict(os.environ)
        env.update(self.env)
        return env

    def proxy_script(self) -> str:
        """Write (once) and return the ProxyCommand script that reaches `%h:%p`.

        The script sets this hop's askpass variables itself, so its token is never
        on a command line.
        """
        path = self.directory.file(f"proxy-{self.name}")
        if not path.exists():
            exports = "".join(
                f"export {key}={shlex.quote(value)}\n"
                for key, value in self.env.items()
            )
            argv = self.argv_for_forward("%h", "%p")
            forward = argv.index("-W") + 1
            # The forward target comes from the script's arguments, unquoted so
            # that the shell expands them.
            words = [shlex.quote(word) for word in argv]
            words[forward] = '"[$1]:$2"'
            command = " ".join(words)
            path.write_text(f"#!/bin/sh\n{exports}exec {command}\n")
            path.chmod(0o700)
        # ssh expands %h and %p before running the command through the shell.
        return f"{shlex.quote(str(path))} %h %p"

    def argv_for_forward(self, host: str, port: str | int) -> list[str]:
        """Return an ssh argv that connects its stdio to `host:port` via this hop."""
        opts = self.options()
        if self.machine.jump_host:
            opts += ["-J", self.machine.jump_host]
        return [SSH, *opts, "-W", f"[{host}]:{port}", "--", self.machine.host]

    # -- running -------------------------------------------------------------------

    def resolve(self, timeout: float = 10.0) -> ResolvedHost:
        """Ask OpenSSH where it will connect (`ssh -G`), applying `~/.ssh/config`."""
        argv = [SSH, "-G", *self.options(control=False), "--", self.machine.host]
        result = self._run(argv, timeout, "resolve")
        values: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" ")
            values.setdefault(key.lower(), value.strip())
        jump = values.get("proxyjump", "")
        return ResolvedHost(
            hostname=values.get("hostname", self.machine.host),
            port=int(values.get("port", "22")),
            user=values.get("user", ""),
            proxy_jump="" if jump.lower() == "none" else jump,
        )

    def open_master(self, timeout: float = 120.0) -> None:
        """Authenticate once and leave the ControlMaster running for the session.

        Raises:
            SshCommandError: ssh failed; the caller maps `stderr` to a reason.
        """
        self._run(self.argv("exit", "0"), timeout, "authenticate")
        self.master_pid = self.check_master()
        logger.debug("%s: ssh master pid %s", self.machine.name, self.master_pid)

    def check_master(self) -> int | None:
        """Return the ControlMaster's PID, or None when it is not running."""
        argv = [SSH, *self.options(), "-O", "check", "--", self.machine.host]
        try:
            result = self._run(argv, 10.0, "check", check=False)
        except SshCommandError:
            return None
        match = _MASTER_PID.search(result.stderr)
        return int(match.group(1)) if match and result.returncode == 0 else None

    def close_master(self, timeout: float = 5.0) -> list[str]:
        """Stop the ControlMaster and check that its process ended.

        Returns:
            Problems found (a process still running), empty when it is gone.
        """
        pid = self.master_pid or self.check_master()
        if pid is None:
            return []
        argv = [SSH, *self.options(), "-O", "exit", "--", self.machine.host]
        try:
            self._run(argv, 10.0, "close", check=False)
        except SshCommandError as exc:
            logger.debug("%s: ssh -O exit failed: %s", self.machine.name, exc)
        if _wait_gone(pid, timeout):
            self.master_pid = None
            return []
        # The master is our own child's process; end it by its PID.
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, 2.0):
            self.master_pid = None
            return []
        return [f"ssh master process {pid} for {self.machine.host} is still running"]

    def _run(
        self, argv: list[str], timeout: float, action: str, check: bool = True
    ) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.process_env(),
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise SshCommandError(
                f"ssh {action} for {self.machine.host} timed out after {timeout:.0f} s",
                None,
                _tail(exc.stderr),
            ) from exc
        except (FileNotFoundError, PermissionError) as exc:
            raise SshNotFoundError(
                f"cannot start {argv[0]!r}: {exc.strerror or exc}", None, ""
            ) from exc
        except OSError as exc:
            raise SshCommandError(f"cannot run ssh: {exc}", None, "") from exc
        if check and result.returncode != 0:
            raise SshCommandError(
                f"ssh {action} for {self.machine.host} failed with status "
                f"{result.returncode}",
                result.returncode,
                _tail(result.stderr),
            )
        return result


def _tail(text: object, lines: int = 8) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    if not isinstance(text, str):
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """Return True when a process with `pid` exists; a zombie counts as ended."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
