"""The site configuration: machines and policies that an administrator fixes.

Administrators write `site.toml` (read-only for users), like WinSCP's INI file or
FileZilla's fzdefaults.xml. It is looked for next to the bundle's executable (when
frozen) and in the system configuration directories (`/etc/xdg/rpyc-explorer` on
Linux). Every file found is read. A later file wins key by key and machine by id, so
the machine's own system file overrides the one shipped with the bundle:

    version = 1

    [policies]
    store_passwords = false          # hide "remember in keyring"
    allow_user_machines = false      # users cannot add or clone machines
    known_hosts = "/etc/rpyc-explorer/known_hosts"
    default_python = "/usr/bin/python3"
    connect_timeout = 20             # seconds

    [[machines]]                     # fields of `Machine`; shown as managed
    id = "build-01"
    name = "Build server"
    host = "build01.example.com"

Policies the site sets are locked: the user's `settings.toml` (same keys, in the
user configuration directory) fills in only the keys the site left out. An invalid
entry becomes a `SiteProblem` naming the file, the line and the reason; the rest of
the file still applies, and loading never raises. This module never imports Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from . import paths
from .record import LOCAL_ID, InvalidMachineError, Machine
from .store import _decode_error_line  # the TOML error's line, on any Python

logger = logging.getLogger(__name__)

SITE_FILE_NAME = "site.toml"
USER_SETTINGS_FILE_NAME = "settings.toml"
# Points at one site file instead of the search path, to try a file before rolling it out.
SITE_ENV = "RPYC_EXPLORER_SITE_CONFIG"
FORMAT_VERSION = 1
MAX_CONNECT_TIMEOUT = 600.0
# A section with more lines that do not parse than this is dropped whole.
MAX_DROPPED_LINES = 20
# Invalid site values of these policies count as false, the restrictive choice.
RESTRICTING_POLICIES = ("store_passwords", "allow_user_machines")
POLICY_NAMES = (
    "store_passwords", "allow_user_machines", "known_hosts", "default_python",
    "connect_timeout",
)  # fmt: skip


@dataclass(frozen=True)
class Policies:
    """Site policies, with the defaults that apply when nothing is set.

    Attributes:
        store_passwords: users may remember passwords and passphrases in the keyring.
        allow_user_machines: users may add, clone and import machines.
        known_hosts: a site known-hosts file, honoured read-only next to the
            user's own; None when the site has none.
        default_python: interpreter used on a machine whose record names none;
            empty means "find one".
        connect_timeout: seconds to wait for a TCP connection and the SSH
            host-key exchange; None keeps the session layer's own timeouts.
        locked: the names set by the site; user settings cannot change them.
    """

    store_passwords: bool = True
    allow_user_machines: bool = True
    known_hosts: Path | None = None
    default_python: str = ""
    connect_timeout: float | None = None
    locked: frozenset[str] = frozenset()

    def merged_with(self, user: Mapping[str, Any]) -> Policies:
        """Return these policies with the user's values for the unlocked names.

        `user` holds already validated values (see `load_user_settings`); a value
        for a locked name is ignored and logged.
        """
        changes: dict[str, Any] = {}
        for name, value in user.items():
            if name not in POLICY_NAMES:
                continue
            if name in self.locked:
                logger.info("site config: policy %s is set by the site; the user value is ignored", name)
                continue
            changes[name] = value
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SiteProblem:
    """An entry of a site or settings file that was not applied.

    Attributes:
        path: the file.
        line: 1-based line of the entry, or None when unknown.
        reason: what is wrong and what was done instead.
    """

    path: Path
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line else str(self.path)
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class SiteConfig:
    """The merged site configuration.

    Attributes:
        machines: managed machines, in file order (`managed` is True).
        policies: the site's policies; `locked` names those the files set.
        problems: entries that were not applied, in reading order.
        files: the site files that were read.
    """

    machines: tuple[Machine, ...] = ()
    policies: Policies = field(default_factory=Policies)
    problems: tuple[SiteProblem, ...] = ()
    files: tuple[Path, ...] = ()


def default_paths() -> list[Path]:
    """Return the site files to read, lowest priority first.

    `RPYC_EXPLORER_SITE_CONFIG`, when set, replaces the list with that one file.
    Otherwise: `site.toml` next to the executable of a frozen bundle, then the
    system configuration directories from the least to the most important one.
    """
    override = os.environ.get(SITE_ENV)
    if override:
        return [Path(override)]
    found: list[Path] = []
    if getattr(sys, "frozen", False):
        found.append(Path(sys.executable).resolve().parent / SITE_FILE_NAME)
    system = platformdirs.site_config_dir(paths.APP_NAME, appauthor=False, multipath=True)
    for directory in reversed(system.split(os.pathsep)):
        candidate = Path(directory) / SITE_FILE_NAME
        if candidate not in found:
            found.append(candidate)
    return found


def load_site_config(paths: Iterable[Path | str] | None = None) -> SiteConfig:
    """Read and merge the site files; never raises.

    Args:
        paths: the files to read, lowest priority first; missing files are
            skipped. Defaults to `default_paths()`.

    Returns:
        The merged configuration; `problems` lists what was not applied.
    """
    files = [Path(p) for p in (default_paths() if paths is None else paths)]
    reader = _SiteReader()
    read: list[Path] = []
    for path in files:
        if reader.read_file(path):
            read.append(path)
    config = SiteConfig(
        machines=tuple(reader.machines.values()),
        policies=Policies(**reader.policies, locked=frozenset(reader.policies)),
        problems=tuple(reader.problems),
        files=tuple(read),
    )
    for problem in config.problems:
        logger.warning("site config: %s", problem)
    if read:
        logger.info(
            "site config: read %s: %d managed machines, policies %s",
            ", ".join(map(str, read)), len(config.machines), sorted(config.policies.locked),
        )  # fmt: skip
    return config


def load_user_settings(config_dir: Path | None = None) -> tuple[dict[str, Any], list[SiteProblem]]:
    """Read the user's `settings.toml`: policy values the site did not lock.

    Returns:
        The valid values by name, and the problems of the invalid ones.
    """
    path = (config_dir or paths.config_dir()) / USER_SETTINGS_FILE_NAME
    reader = _SiteReader(user=True)
    reader.read_file(path)
    for problem in reader.problems:
        logger.warning("user settings: %s", problem)
    return dict(reader.policies), list(reader.problems)


class _SiteReader:
    """Accumulates policies, machines and problems over several files."""

    def __init__(self, user: bool = False) -> None:
        self.user = user
        self.policies: dict[str, Any] = {}
        self.machines: dict[str, Machine] = {}
        self.problems: list[SiteProblem] = []
        self._path = Path()
        self._text = ""

    def read_file(self, path: Path) -> bool:
        """Apply one file; return False when it does not exist or cannot be read."""
        self._path = path
        try:
            self._text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError) as exc:
            self._problem(None, f"the file cannot be read ({exc}); it is ignored")
            return False
        try:
            documents = [(tomllib.loads(self._text), 0)]
        except tomllib.TOMLDecodeError as exc:
            documents = self._parse_sections(exc)
        for document, offset in documents:
            self._apply_document(document, offset)
        return True

    def _parse_sections(self, error: tomllib.TOMLDecodeError) -> list[tuple[dict[str, Any], int]]:
        # The file as a whole is not TOML. Each [table] section is parsed on its own
        # and a line that does not parse is dropped, so one typo does not discard
        # the policies around it.
        documents: list[tuple[dict[str, Any], int]] = []
        for start, chunk in _split_sections(self._text):
            document = self._parse_dropping_lines(chunk, start)
            if document is not None:
                documents.append((document, start))
        if not documents:
            self._problem(_decode_error_line(error), f"invalid TOML: {error}; the file is ignored")
        return documents

    def _parse_dropping_lines(self, chunk: str, start: int) -> dict[str, Any] | None:
        lines = chunk.splitlines(keepends=True)
        for _attempt in range(MAX_DROPPED_LINES):
            try:
                return tomllib.loads("".join(lines))
            except tomllib.TOMLDecodeError as exc:
                line = _decode_error_line(exc)
                # A broken header would move its keys into the previous table.
                if not line or line > len(lines) or lines[line - 1].strip()[:1] in ("", "["):
                    self._problem(
                        start + line if line else None,
                        f"invalid TOML: {exc}; this section is ignored",
                    )  # fmt: skip
                    return None
                self._problem(start + line, f"invalid TOML: {exc}; this line is ignored")
                lines[line - 1] = "\n"
        self._problem(start + 1, f"more than {MAX_DROPPED_LINES} invalid lines; this section is ignored")
        return None

    def _apply_document(self, document: dict[str, Any], offset: int) -> None:
        version = document.pop("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self._problem(
                self._line(offset, None, 0, "version"),
                f"format version {version!r} is not supported (expected {FORMAT_VERSION}); "
                "the file is read as version 1",
            )  # fmt: skip
        policies = document.pop("policies", {}) if not self.user else document
        if not self.user:
            self._apply_machines(document.pop("machines", []), offset)
            for key in document:
                self._problem(
                    self._line(offset, None, 0, key),
                    f"unknown key {key!r} is ignored; expected 'version', [policies] "
                    "or [[machines]]",
                )  # fmt: skip
        if not isinstance(policies, dict):
            self._problem(self._line(offset, None, 0, "policies"), "'policies' must be a table")
            return
        table = None if self.user else "policies"
        for name, value in policies.items():
            self._apply_policy(name, value, self._line(offset, table, 0, name))

    def _apply_policy(self, name: str, value: Any, line: int | None) -> None:
        if name not in POLICY_NAMES:
            self._problem(line, f"unknown policy {name!r} is ignored; expected one of {POLICY_NAMES}")
            return
        try:
            self.policies[name] = _validate_policy(name, value)
        except ValueError as exc:
            if self.user or name not in RESTRICTING_POLICIES:
                self._problem(line, f"policy {name!r} is ignored: {exc}")
                return
            # A site that meant to restrict users stays restrictive despite a typo.
            self.policies[name] = False
            self._problem(line, f"policy {name!r} is invalid: {exc}; false applies until it is fixed")

    def _apply_machines(self, tables: Any, offset: int) -> None:
        if not isinstance(tables, list):
            self._problem(self._line(offset, None, 0, "machines"), "'machines' must be [[machines]] tables")
            return
        seen: set[str] = set()
        for index, table in enumerate(tables):
            try:
                machine = _managed_machine(table, seen)
            except InvalidMachineError as exc:
                name = table.get("name") if isinstance(table, dict) else None
                label = f"machine {name!r}" if isinstance(name, str) else "a machine"
                line = self._line(offset, "machines", index, exc.field)
                self._problem(line, f"{label} is ignored: {exc}")
                continue
            seen.add(machine.id)
            self.machines.pop(machine.id, None)
            self.machines[machine.id] = machine

    def _line(self, offset: int, table: str | None, index: int, key: str) -> int | None:
        return _find_line(self._text, offset, table, index, key)

    def _problem(self, line: int | None, reason: str) -> None:
        self.problems.append(SiteProblem(self._path, line, reason))


def _managed_machine(table: Any, seen: set[str]) -> Machine:
    if not isinstance(table, dict):
        raise InvalidMachineError("machines", "each [[machines]] entry must be a table")
    machine = Machine.from_dict(table, managed=True)
    if machine.id == LOCAL_ID:
        raise InvalidMachineError("id", f"id {LOCAL_ID!r} is reserved for 'This computer'")
    if machine.id in seen:
        raise InvalidMachineError("id", f"id {machine.id!r} is used twice in this file")
    return machine


def _validate_policy(name: str, value: Any) -> Any:
    """Return the policy value to use, or raise ValueError saying what is expected."""
    if name in ("store_passwords", "allow_user_machines"):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, not {value!r}")
        return value
    if name == "connect_timeout":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number of seconds, not {value!r}")
        if not 0 < value <= MAX_CONNECT_TIMEOUT:  # also rejects NaN and infinity
            raise ValueError(f"{value!r} seconds is out of range (0, {MAX_CONNECT_TIMEOUT:g}]")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, not {value!r}")
    if name == "default_python":
        if value.startswith("-") or any(c.isspace() for c in value):
            raise ValueError(f"interpreter {value!r} must not start with '-' or contain spaces")
        return value
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        raise ValueError(f"known_hosts {value!r} must be an absolute path")
    if not path.is_file():
        raise ValueError(f"known_hosts file {str(path)!r} does not exist")
    return path


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def _split_sections(text: str) -> list[tuple[int, str]]:
    """Split TOML text at table headers; return (line offset, text) per section.

    Any line that starts with "[" in the first column counts as a header, also a
    malformed one, so that a broken header takes only its own section down.
    """
    lines = text.splitlines(keepends=True)
    starts = [0] + [n for n, line in enumerate(lines) if n and line.startswith("[")]
    ends = starts[1:] + [len(lines)]
    return [(start, "".join(lines[start:end])) for start, end in zip(starts, ends)]


def _find_line(text: str, offset: int, table: str | None, index: int, key: str) -> int | None:
    """Return the 1-based line of `key` in the `index`-th `[table]` after `offset`.

    With `table` None the key is looked up before the first header. When the key
    is absent, the table's header line is returned, or None.
    """
    key_pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    lines = text.splitlines()
    start, header_line = offset, None
    if table is not None:
        headers = [
            n for n in range(offset, len(lines))
            if (match := _HEADER.match(lines[n])) and match.group(1).strip("\"'") == table
        ]  # fmt: skip
        if index >= len(headers):
            return None
        start = headers[index] + 1
        header_line = start
    for number in range(start, len(lines)):
        if _HEADER.match(lines[number]):
            break
        if key_pattern.match(lines[number]):
            return number + 1
    return header_line
