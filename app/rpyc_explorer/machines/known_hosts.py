"""SSH host keys: fetch a server's key before authenticating and compare it.

Known keys come from the application's own file (`<data dir>/known_hosts`, the only
one it writes), the user's `~/.ssh/known_hosts` and the system file
`/etc/ssh/ssh_known_hosts` (both only read), plus per-session files for keys the
user accepted once. Hashed entries and the `[host]:port` form are understood.

The check never decides for the user: an unknown key goes to the UI, and a changed
key raises `HostKeyChangedError`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import logging
import shlex
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paramiko

from . import paths
from .atomic import atomic_write

logger = logging.getLogger(__name__)

SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
# Host-key algorithm names that negotiate each key type stored in known_hosts.
_ALGORITHMS_FOR_TYPE = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


class HostKeyError(Exception):
    """Base class of host-key failures."""


class HostKeyFetchError(HostKeyError):
    """Raised when the server's host key could not be fetched."""


class HostKeyChangedError(HostKeyError):
    """Raised when a server presents a key that differs from the saved one.

    Attributes:
        host, port: the server.
        new: the key the server presented.
        old: the saved keys and the files they are in.
    """

    def __init__(
        self, host: str, port: int, new: HostKey, old: Sequence[KnownKey]
    ) -> None:
        self.host, self.port, self.new, self.old = host, port, new, list(old)
        saved = "; ".join(
            f"{k.key.key_type} {k.key.fingerprint} in {k.source}" for k in old
        )
        name = known_hosts_name(host, port)
        user_files = sorted({str(k.source) for k in old if not k.in_app_file})
        how_to_forget = 'use "Forget host key" on this machine'
        if user_files:
            files = " and ".join(user_files)
            how_to_forget += (
                f"; the key in {files} is never changed by this program, remove it "
                f"with: ssh-keygen -R {shlex.quote(name)} -f <file>"
            )
        super().__init__(
            f"The host key of {name} has CHANGED. Saved: {saved}. Presented now: "
            f"{new.key_type} {new.fingerprint}. Someone may be intercepting the "
            "connection (a man-in-the-middle attack), or the host was reinstalled. "
            "The connection was stopped before any password or key was sent. Check "
            "the new fingerprint with the host's administrator; if it is right, "
            f"{how_to_forget}, then connect again."
        )


@dataclass(frozen=True)
class HostKey:
    """A public host key: its type, SHA-256 fingerprint and base64 blob."""

    key_type: str
    blob: str

    @classmethod
    def from_pkey(cls, key: paramiko.PKey) -> HostKey:
        """Build from a paramiko public key."""
        return cls(key.get_name(), key.get_base64())

    @property
    def fingerprint(self) -> str:
        """The OpenSSH fingerprint, `SHA256:` plus unpadded base64."""
        return sha256_fingerprint(base64.b64decode(self.blob))

    def line(self, host: str, port: int) -> str:
        """Return a known_hosts line for this key."""
        return f"{known_hosts_name(host, port)} {self.key_type} {self.blob}"


@dataclass(frozen=True)
class KnownKey:
    """A key found in a known_hosts file."""

    key: HostKey
    source: Path
    in_app_file: bool


class HostKeyStatus(enum.Enum):
    """The result of comparing a presented key with the known ones."""

    KNOWN = "known"
    UNKNOWN = "unknown"
    CHANGED = "changed"


@dataclass(frozen=True)
class HostKeyCheck:
    """The outcome of `KnownHosts.check`."""

    status: HostKeyStatus
    host: str
    port: int
    key: HostKey
    known: tuple[KnownKey, ...]


@dataclass(frozen=True)
class ForgetResult:
    """The outcome of `KnownHosts.forget`: lines removed, files still listing it."""

    removed: int
    still_listed_in: tuple[Path, ...]


def sha256_fingerprint(blob: bytes) -> str:
    """Return the OpenSSH SHA-256 fingerprint of a public key blob."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """Return the host field OpenSSH writes: `host` on port 22, else `[host]:port`."""
    return host if port == 22 else f"[{host}]:{port}"


def fetch_host_key(
    host: str,
    port: int,
    timeout: float = 10.0,
    preferred_types: Iterable[str] = (),
    proxy_command: Sequence[str] | None = None,
) -> HostKey:
    """Fetch the server's host key with an SSH handshake that never authenticates.

    Args:
        host, port: the server.
        timeout: seconds for the TCP connect and the key exchange.
        preferred_types: key types to negotiate first (those already known for
            the host), so the comparison uses the same type OpenSSH will pick.
        proxy_command: argv whose stdin/stdout reach the server (`ssh -W` through
            a jump host); None connects directly.

    Raises:
        HostKeyFetchError: the connection or the key exchange failed.
    """
    target = f"{host}:{port}"
    try:
        if proxy_command is not None:
            sock: object = paramiko.ProxyCommand(shlex.join(proxy_command))
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise HostKeyFetchError(
            f"cannot connect to {target}: {exc.strerror or exc}. Check the host name, "
            "the port and that the SSH server is running"
        ) from exc
    transport = paramiko.Transport(sock)
    try:
        _prefer_key_types(transport, preferred_types)
        transport.start_client(timeout=timeout)
        return HostKey.from_pkey(transport.get_remote_server_key())
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostKeyFetchError(
            f"the SSH handshake with {target} failed: {exc}. Check that the port is an "
            "SSH server's"
        ) from exc
    finally:
        transport.close()


def _prefer_key_types(transport: paramiko.Transport, key_types: Iterable[str]) -> None:
    options = transport.get_security_options()
    available = list(options.key_types)
    first: list[str] = []
    for key_type in key_types:
        for algorithm in _ALGORITHMS_FOR_TYPE.get(key_type, (key_type,)):
            if algorithm in available and algorithm not in first:
                first.append(algorithm)
    if first:
        options.key_types = tuple(first + [a for a in available if a not in first])


class KnownHosts:
    """The known-hosts files the application reads and the one it writes.

    Args:
        app_file: the application's own file; defaults to `<data dir>/known_hosts`.
        read_only_files: files honoured but never written; default
            `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`.
    """

    def __init__(
        self,
        app_file: Path | str | None = None,
        read_only_files: Iterable[Path | str] | None = None,
    ) -> None:
        self.app_file = Path(app_file) if app_file else paths.data_dir() / "known_hosts"
        if read_only_files is None:
            read_only_files = [paths.user_ssh_dir() / "known_hosts", SYSTEM_KNOWN_HOSTS]
        self.read_only_files = [Path(p) for p in read_only_files]

    def ssh_files(self, session_file: Path | None = None) -> list[Path]:
        """Return the files for OpenSSH's `UserKnownHostsFile`, app file first."""
        files = [self.app_file, *self.read_only_files]
        if session_file is not None:
            files.append(session_file)
        return files

    def known_keys(
        self, host: str, port: int, extra_files: Iterable[Path] = ()
    ) -> list[KnownKey]:
        """Return every key listed for the host in all files."""
        name = known_hosts_name(host, port)
        extra = list(extra_files)
        found: list[KnownKey] = []
        for source in [self.app_file, *extra, *self.read_only_files]:
            if not source.is_file():
                continue
            keys = paramiko.HostKeys()
            try:
                keys.load(str(source))
            except (OSError, UnicodeDecodeError) as exc:
                logger.warning("known hosts: cannot read %s: %s", source, exc)
                continue
            entries = keys.lookup(name) or {}
            in_app = source == self.app_file or source in extra
            for key in entries.values():
                found.append(KnownKey(HostKey.from_pkey(key), source, in_app))
        return found

    def check(
        self, host: str, port: int, key: HostKey, extra_files: Iterable[Path] = ()
    ) -> HostKeyCheck:
        """Compare `key` with the known keys of the host.

        A key of a type that is not known, while keys of other types are, counts
        as CHANGED: the preferred-type fetch already asked for a known type, so
        the server no longer offers it.
        """
        extra = list(extra_files)
        known = tuple(self.known_keys(host, port, extra))
        if any(k.key == key for k in known):
            status = HostKeyStatus.KNOWN
        elif known:
            status = HostKeyStatus.CHANGED
        else:
            status = HostKeyStatus.UNKNOWN
        return HostKeyCheck(status, host, port, key, known)

    def save(
        self, host: str, port: int, key: HostKey, file: Path | None = None
    ) -> None:
        """Append the key to the application's file (or `file`), atomically."""
        target = file or self.app_file
        try:
            existing = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = ""
        if existing and not existing.endswith("\n"):
            existing += "\n"
        atomic_write(target, (existing + key.line(host, port) + "\n").encode("utf-8"))
        logger.info(
            "known hosts: saved %s %s for %s to %s",
            key.key_type, key.fingerprint, known_hosts_name(host, port), target,
        )  # fmt: skip

    def forget(self, host: str, port: int) -> ForgetResult:
        """Remove the host's keys from the application's file.

        Returns:
            How many lines were removed, and the read-only files that still list
            the host (the user must edit those, e.g. with `ssh-keygen -R`).
        """
        name = known_hosts_name(host, port)
        removed = 0
        if self.app_file.is_file():
            remaining: list[str] = []
            for line in self.app_file.read_text(encoding="utf-8").splitlines():
                if _line_matches(line, name):
                    removed += 1
                else:
                    remaining.append(line)
            if removed:
                data = "".join(f"{line}\n" for line in remaining).encode("utf-8")
                atomic_write(self.app_file, data)
        still = tuple(
            source
            for source in self.read_only_files
            if source.is_file()
            and any(_line_matches(line, name) for line in _read_lines(source))
        )
        logger.info("known hosts: forgot %d keys of %s", removed, name)
        return ForgetResult(removed, still)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _line_matches(line: str, name: str) -> bool:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return False
    hosts = fields[1] if fields[0].startswith("@") and len(fields) > 1 else fields[0]
    for pattern in hosts.split(","):
        if pattern.startswith("|1|"):
            if _hashed_matches(pattern, name):
                return True
        elif pattern == name:
            return True
    return False


def _hashed_matches(pattern: str, name: str) -> bool:
    try:
        _, _, salt, digest = pattern.split("|")
        expected = hmac.new(
            base64.b64decode(salt), name.encode(), hashlib.sha1
        ).digest()
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except ValueError:
        return False
