"""A throwaway OpenSSH server on 127.0.0.1 for tests that need a real SSH peer.

`start_sshd()` runs Debian's ``/usr/sbin/sshd -D -e -f <own config>`` on a free port with
its own host key, a throwaway user key and, when the tests run as root, a dedicated login
user (``rpyc-explorer-test`` by default) with a random password. Nothing outside its
temporary directory is touched, apart from creating that user and its password file
(``/run/<user>.password``, root only) once, and ``/run/sshd`` (the privilege-separation
directory sshd requires). As a non-root user the server can only log in that same user,
and password login is unavailable.

Use from a conftest::

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/
    from sshd import sshd_server  # noqa: F401  (session-scoped fixture)

The fixture yields an `SshServer` with these members:

* ``host``, ``port``, ``user``, ``uid``, ``key_path``, ``known_hosts`` (a path);
* ``password``, which is None unless the tests run as root;
* ``pid``, the PID of sshd;
* ``ssh_options()`` and ``ssh_argv(*command)`` for the plain ``ssh`` client;
* ``run(command)``, which runs one ``ssh host command``;
* ``ssh_machine()`` and ``paramiko_machine(password=False)``, plumbum machines;
* ``known_host_policy()``, a paramiko policy that accepts only the pinned host key.

``start_sshd(extra_config=[...], user=...)`` starts another server with extra
sshd_config lines or another login user; call its ``stop()`` when done.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

SSHD = "/usr/sbin/sshd"
TEST_USER = "rpyc-explorer-test"
PASSWORD_FILE = "/run/{user}.password"
START_TIMEOUT = 10.0


@dataclass
class SshServer:
    """A running throwaway sshd and the client-side files that reach it."""

    host: str
    port: int
    user: str
    key_path: str
    password: str | None
    known_hosts: str
    pid: int
    directory: str
    uid: int
    _process: subprocess.Popen = field(repr=False)

    def ssh_options(self) -> list[str]:
        """Return ``ssh`` options that ignore every user and system config file."""
        return [
            "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip

    def ssh_argv(self, *command: str, port: int | None = None) -> list[str]:
        """Return the argv of ``ssh`` with the throwaway key, running ``command``."""
        return [
            "ssh",
            *self.ssh_options(),
            "-o", "BatchMode=yes",
            "-i", self.key_path,
            "-p", str(port or self.port),
            f"{self.user}@{self.host}",
            *command,
        ]  # fmt: skip

    def run(self, command: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run one shell ``command`` over ssh as the test user; output is text."""
        return subprocess.run(
            self.ssh_argv(command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ssh_machine(self, *, port: int | None = None, **kwargs: Any) -> Any:
        """Return a plumbum ``SshMachine`` logged in with the throwaway key."""
        from plumbum import SshMachine

        return SshMachine(
            self.host,
            user=self.user,
            port=port or self.port,
            keyfile=self.key_path,
            ssh_opts=[*self.ssh_options(), "-o", "BatchMode=yes"],
            scp_opts=self.ssh_options(),
            **kwargs,
        )

    def known_host_policy(self) -> Any:
        """Return a paramiko policy that accepts only this server's host key."""
        return _pinned_policy(self.known_hosts)

    def paramiko_machine(self, *, password: bool = False, **kwargs: Any) -> Any:
        """Return a plumbum ``ParamikoMachine`` that checks the pinned host key.

        With ``password=True`` it logs in with the password instead of the key.
        """
        from plumbum.machines.paramiko_machine import ParamikoMachine

        credentials: dict[str, Any] = {"keyfile": self.key_path}
        if password:
            if self.password is None:
                raise RuntimeError("password login needs the tests to run as root")
            credentials = {"password": self.password}
        return ParamikoMachine(
            self.host,
            user=self.user,
            port=self.port,
            load_system_host_keys=False,
            missing_host_policy=self.known_host_policy(),
            look_for_keys=False,
            connect_timeout=10,
            **credentials,
            **kwargs,
        )

    def stop(self) -> None:
        """Stop sshd by its PID and delete the temporary directory."""
        if self._process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def _pinned_policy(known_hosts: str) -> Any:
    import paramiko

    class PinnedHostKeyPolicy(paramiko.RejectPolicy):
        """Accept a host key only when it matches the pinned known_hosts file.

        ParamikoMachine connects inside its constructor, so the key cannot be loaded
        into its client beforehand; this policy checks against the file instead.
        """

        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            pinned = paramiko.HostKeys(known_hosts)
            if pinned.check(hostname, key):
                client.get_host_keys().add(hostname, key.get_name(), key)
                return
            super().missing_host_key(client, hostname, key)

    return PinnedHostKeyPolicy()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ensure_test_user(user: str) -> tuple:
    """Create the dedicated login user if missing; return its entry and password.

    The password is random, set once through chpasswd (on stdin, so it is on no command
    line) and kept in a root-only file under /run, so concurrent test sessions share it
    instead of resetting each other's.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "-m", "-s", "/bin/sh", user],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(user)
    password_file = PASSWORD_FILE.format(user=user)
    try:
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(password_file) as stored:
            return entry, stored.read().strip()
    password = secrets.token_urlsafe(18)
    subprocess.run(
        ["chpasswd"],
        input=f"{user}:{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    with os.fdopen(descriptor, "w") as stored:
        stored.write(password + "\n")
    return entry, password


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _write_config(
    directory: Path, port: int, user: str, as_root: bool, extra: Sequence[str]
) -> Path:
    config = directory / "sshd_config"
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {directory / 'host_ed25519'}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        # The files live under /tmp (world-writable), which StrictModes rejects.
        "StrictModes no",
        "PubkeyAuthentication yes",
        f"PasswordAuthentication {'yes' if as_root else 'no'}",
        "KbdInteractiveAuthentication no",
        # Without PAM, sshd checks passwords against /etc/shadow itself (root only).
        "UsePAM no",
        f"AllowUsers {user}",
        "PermitRootLogin no",
        "PrintMotd no",
        "MaxSessions 64",
        "MaxStartups 64",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        *extra,
    ]
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                if probe.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} in {START_TIMEOUT}s")


def start_sshd(extra_config: Sequence[str] = (), user: str = TEST_USER) -> SshServer:
    """Start a throwaway sshd on 127.0.0.1 and return its handle; call ``stop()``.

    ``extra_config`` lines are appended to its sshd_config (e.g. a ``ForceCommand``).
    As root, ``user`` is the login user, created if missing; a test that must be the
    only one acting as its user (to count that user's files) passes its own name.
    """
    as_root = os.geteuid() == 0
    password = None
    if as_root:
        entry, password = _ensure_test_user(user)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    else:
        entry = pwd.getpwuid(os.geteuid())
    directory = Path(tempfile.mkdtemp(prefix="rpyc-sshd-"))
    # The login user's sshd child reads authorized_keys as that user.
    directory.chmod(0o755)
    host_key = _keygen(directory / "host_ed25519", "rpyc-explorer-test-host")
    user_key = _keygen(directory / "user_ed25519", "rpyc-explorer-test-user")
    authorized = directory / "authorized_keys"
    authorized.write_text(user_key + "\n")
    authorized.chmod(0o644)

    for _attempt in range(3):
        port = _free_port()
        config = _write_config(directory, port, entry.pw_name, as_root, extra_config)
        with open(directory / "sshd.log", "ab") as log_file:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        try:
            _wait_listening(process, port)
            break
        except RuntimeError:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=5)
    else:
        log = (directory / "sshd.log").read_text(errors="replace")[-2000:]
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"sshd failed to start; its log ends with:\n{log}")

    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key}\n")
    return SshServer(
        host="127.0.0.1",
        port=port,
        user=entry.pw_name,
        key_path=str(directory / "user_ed25519"),
        password=password,
        known_hosts=str(known_hosts),
        pid=process.pid,
        directory=str(directory),
        uid=entry.pw_uid,
        _process=process,
    )


def sshd_server_fixture() -> Iterator[SshServer]:
    server = start_sshd()
    try:
        yield server
    finally:
        server.stop()


def _make_fixture() -> Any:
    import pytest

    return pytest.fixture(scope="session", name="sshd_server")(sshd_server_fixture)


sshd_server = _make_fixture()


def descendants(pid: int) -> Sequence[int]:
    """Return the PIDs of every live descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found
