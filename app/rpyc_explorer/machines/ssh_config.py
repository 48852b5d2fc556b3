"""Import machines from the user's OpenSSH client configuration (`~/.ssh/config`).

The file is only read. Each concrete alias on a `Host` line becomes one machine with
HostName, User, Port, IdentityFile and ProxyJump resolved the way OpenSSH resolves
them (first value wins, `Host *` defaults apply). Patterns with `*`, `?` or `!`
name no single host and are skipped.

NOTE: paramiko's parser (3.x) ignores `Include` and `Match` blocks, so hosts
defined only in included files are not imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import paramiko

from . import paths
from .record import InvalidMachineError, Machine

logger = logging.getLogger(__name__)

_WILDCARDS = set("*?!")


class SshConfigError(Exception):
    """Raised when the OpenSSH configuration file cannot be read or parsed."""


def default_path() -> Path:
    """Return `~/.ssh/config`."""
    return paths.user_ssh_dir() / "config"


def host_aliases(config: paramiko.SSHConfig) -> list[str]:
    """Return the concrete aliases of `Host` lines in file order, without duplicates."""
    aliases: list[str] = []
    for entry in config._config:  # noqa: SLF001 - paramiko has no public iterator
        for pattern in entry.get("host", []):
            if _WILDCARDS & set(pattern) or pattern in aliases:
                continue
            aliases.append(pattern)
    return aliases


def read_ssh_config(path: Path | str | None = None, group: str = "") -> list[Machine]:
    """Parse an OpenSSH client configuration and return one machine per host alias.

    Args:
        path: the file to read; defaults to `~/.ssh/config`.
        group: group name for the imported machines.

    Raises:
        SshConfigError: the file cannot be read or parsed.
    """
    path = Path(path) if path is not None else default_path()
    try:
        config = paramiko.SSHConfig.from_path(str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SshConfigError(
            f"cannot read the SSH configuration {path}: {exc}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - paramiko raises assorted errors
        raise SshConfigError(
            f"cannot parse the SSH configuration {path}: {exc}"
        ) from exc
    machines: list[Machine] = []
    for alias in host_aliases(config):
        try:
            machines.append(_machine_for(alias, config.lookup(alias), group))
        except (InvalidMachineError, ValueError) as exc:
            logger.warning(
                "ssh config %s: host %r was not imported: %s", path, alias, exc
            )
    return machines


def _machine_for(alias: str, options: paramiko.SSHConfigDict, group: str) -> Machine:
    identity_files = options.get("identityfile") or []
    key_path = os.path.expanduser(identity_files[0]) if identity_files else ""
    port = options.get("port")
    jump = options.get("proxyjump", "")
    return Machine.new(
        alias,
        kind="ssh",
        host=options.get("hostname", alias),
        port=int(port) if port else None,
        user=options.get("user", ""),
        auth="key" if key_path else "agent",
        key_path=key_path,
        jump_host="" if jump.lower() == "none" else jump,
        group=group,
    )


def new_machines(
    imported: Iterable[Machine], existing: Iterable[Machine]
) -> list[Machine]:
    """Return the imported machines whose name is not already in `existing`."""
    names = {m.name for m in existing}
    return [m for m in imported if m.name not in names]
