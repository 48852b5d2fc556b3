"""`MachineStore`: the user's machines, kept as TOML in the config directory.

The file is `machines.toml`: a `version` key and one `[[machines]]` table per
machine with the fields of `Machine` (defaults omitted). Writes are atomic (temp
file, fsync, `os.replace`), so a crash leaves either the old or the new file.

A file that does not parse is moved aside to a timestamped `.bak` and reported in
`problems`. An entry with an invalid field is skipped and the whole file is copied
to a `.bak`; the problem names the file and the line. Neither is ever overwritten
without that backup. Machines from the site configuration (`managed`) and the
built-in "This computer" entry are listed but never written or editable.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

from . import paths
from .atomic import atomic_write
from .record import LOCAL_ID, InvalidMachineError, Machine

logger = logging.getLogger(__name__)

FILE_NAME = "machines.toml"
FORMAT_VERSION = 1


class MachineStoreError(Exception):
    """Base class of the store's errors."""


class ReadOnlyMachineError(MachineStoreError):
    """Raised when the user tries to change a managed or built-in machine."""


class UnknownMachineError(MachineStoreError, KeyError):
    """Raised when no machine has the requested id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown machine"


class StoreWriteError(MachineStoreError):
    """Raised when the machines file could not be written; the old file is intact."""


@dataclass(frozen=True)
class StoreProblem:
    """Something wrong with the machines file found while loading it.

    Attributes:
        path: the file that has the problem.
        line: 1-based line number, or None when unknown.
        reason: what is wrong, in one sentence.
        backup: where the original file was kept, or None.
    """

    path: Path
    line: int | None
    reason: str
    backup: Path | None = None

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line else str(self.path)
        text = f"{where}: {self.reason}"
        if self.backup is not None:
            text += f". The original file is kept as {self.backup}"
        return text


class MachineStore:
    """The machine list: built-in, managed (site configuration) and the user's own.

    Args:
        config_dir: directory of `machines.toml`; defaults to `paths.config_dir()`.
        managed: machines from the site configuration; shown read-only.
        load: read the file now (tests may pass False and call `load()` later).

    Attributes:
        allow_user_machines: False when the site policy forbids adding machines;
            `add` (and so `clone`) then raises `ReadOnlyMachineError`.
    """

    def __init__(
        self,
        config_dir: Path | str | None = None,
        managed: Iterable[Machine] = (),
        load: bool = True,
    ) -> None:
        self.path = Path(config_dir or paths.config_dir()) / FILE_NAME
        self.problems: list[StoreProblem] = []
        self._user: list[Machine] = []
        self._managed: list[Machine] = []
        self._listeners: list[Callable[[], None]] = []
        self.allow_user_machines = True
        self.set_managed(managed)
        if load:
            self.load()

    # -- reading -------------------------------------------------------------------

    def load(self) -> None:
        """Read the file, replacing the user's machines; problems go to `problems`."""
        self.problems = []
        self._user = []
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            self._keep_corrupt(None, f"cannot be read ({exc})", move=True)
            return
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self._keep_corrupt(_decode_error_line(exc), f"is not valid TOML: {exc}")
            return
        self._user = self._parse_document(document, text)
        self._notify()

    def _parse_document(self, document: dict[str, Any], text: str) -> list[Machine]:
        version = document.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self._keep_corrupt(
                _find_line(text, None, "version"),
                f"has format version {version!r}; this program reads version "
                f"{FORMAT_VERSION}. Use the program that wrote it",
            )
            return []
        tables = document.get("machines", [])
        if not isinstance(tables, list):
            self._keep_corrupt(
                _find_line(text, None, "machines"), "'machines' must be [[machines]]"
            )
            return []
        machines: list[Machine] = []
        seen: set[str] = set()
        backup: Path | None = None
        for index, table in enumerate(tables):
            try:
                machine = _machine_from_table(table)
                if machine.id in seen or machine.id == LOCAL_ID:
                    raise InvalidMachineError("id", f"id {machine.id!r} is used twice")
            except InvalidMachineError as exc:
                backup = backup or self._backup(copy=True)
                line = _find_line(text, index, exc.field)
                name = table.get("name") if isinstance(table, dict) else None
                label = f"machine {name!r}" if isinstance(name, str) else "a machine"
                self._add_problem(line, f"{label} was skipped: {exc}", backup)
                continue
            seen.add(machine.id)
            machines.append(machine)
        return machines

    def _keep_corrupt(self, line: int | None, reason: str, move: bool = True) -> None:
        backup = self._backup(copy=not move)
        self._add_problem(line, f"the machines file {reason}", backup)

    def _add_problem(self, line: int | None, reason: str, backup: Path | None) -> None:
        problem = StoreProblem(self.path, line, reason, backup)
        logger.warning("machine store: %s", problem)
        self.problems.append(problem)

    def _backup(self, copy: bool) -> Path | None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{stamp}.bak")
        counter = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.{stamp}-{counter}.bak")
            counter += 1
        try:
            if copy:
                shutil.copy2(self.path, target)
            else:
                os.replace(self.path, target)
        except OSError as exc:
            logger.warning("machine store: cannot back up %s: %s", self.path, exc)
            return None
        return target

    # -- queries -------------------------------------------------------------------

    def machines(self) -> list[Machine]:
        """Return every machine: "This computer", then managed, then the user's."""
        managed_ids = {m.id for m in self._managed}
        user = [m for m in self._user if m.id not in managed_ids]
        return [Machine.this_computer(), *self._managed, *user]

    def get(self, machine_id: str) -> Machine:
        """Return the machine with `machine_id`.

        Raises:
            UnknownMachineError: no such machine.
        """
        for machine in self.machines():
            if machine.id == machine_id:
                return machine
        raise UnknownMachineError(f"no machine has id {machine_id!r}")

    def groups(self) -> list[str]:
        """Return the non-empty group names in use, sorted."""
        return sorted({m.group for m in self.machines() if m.group})

    # -- changes -------------------------------------------------------------------

    def set_managed(self, machines: Iterable[Machine]) -> None:
        """Replace the managed machines (from the site configuration)."""
        self._managed = [m if m.managed else m.replace(managed=True) for m in machines]
        self._notify()

    def add(self, machine: Machine) -> Machine:
        """Add a user machine and save. Returns the stored record.

        Raises:
            ReadOnlyMachineError: the site policy does not allow adding machines.
            MachineStoreError: the id is already in use.
            StoreWriteError: the file could not be written (nothing changed).
        """
        if not self.allow_user_machines:
            raise ReadOnlyMachineError(
                f"cannot add {machine.name!r}: the site policy does not allow adding "
                "machines; ask your administrator to add it to the site configuration"
            )
        if any(m.id == machine.id for m in self.machines()):
            raise MachineStoreError(f"a machine with id {machine.id!r} already exists")
        stored = machine.replace(managed=False) if machine.managed else machine
        self._commit([*self._user, stored])
        return stored

    def update(self, machine: Machine) -> Machine:
        """Replace the machine with the same id and save.

        Raises:
            ReadOnlyMachineError: the machine is managed or built in.
            UnknownMachineError: no user machine has that id.
            StoreWriteError: the file could not be written (nothing changed).
        """
        self._check_editable(machine.id)
        index = self._user_index(machine.id)
        machines = list(self._user)
        machines[index] = machine.replace(managed=False)
        self._commit(machines)
        return machines[index]

    def remove(self, machine_id: str) -> None:
        """Remove a user machine and save (see `update` for the errors)."""
        self._check_editable(machine_id)
        index = self._user_index(machine_id)
        self._commit(self._user[:index] + self._user[index + 1 :])

    def clone(self, machine_id: str, name: str | None = None) -> Machine:
        """Copy any machine (managed ones too) as a new, editable user machine."""
        source = self.get(machine_id)
        fields = source.to_dict()
        fields.pop("id")
        fields["name"] = name or f"{source.name} (copy)"
        return self.add(Machine.new(**fields))

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every change to the machine list."""
        self._listeners.append(callback)

    def _check_editable(self, machine_id: str) -> None:
        for machine in [Machine.this_computer(), *self._managed]:
            if machine.id == machine_id:
                origin = "built in" if machine.is_builtin else "managed by the site"
                raise ReadOnlyMachineError(
                    f"machine {machine.name!r} is {origin} and cannot be changed; "
                    "clone it to get an editable copy"
                )

    def _user_index(self, machine_id: str) -> int:
        for index, machine in enumerate(self._user):
            if machine.id == machine_id:
                return index
        raise UnknownMachineError(f"no machine has id {machine_id!r}")

    def _commit(self, machines: list[Machine]) -> None:
        self.save(machines)
        self._user = machines
        self._notify()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    # -- writing -------------------------------------------------------------------

    def save(self, machines: list[Machine] | None = None) -> None:
        """Write the user's machines atomically.

        Raises:
            StoreWriteError: writing failed; the previous file is unchanged.
        """
        machines = self._user if machines is None else machines
        document = {
            "version": FORMAT_VERSION,
            "machines": [m.to_dict() for m in machines],
        }
        data = tomli_w.dumps(document).encode("utf-8")
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot save machines to {self.path}: {exc.strerror or exc}; "
                "the previous file is unchanged. Check that the directory is "
                "writable and the disk is not full"
            ) from exc
        logger.info("machine store: saved %d machines to %s", len(machines), self.path)


def _machine_from_table(table: object) -> Machine:
    if not isinstance(table, dict):
        raise InvalidMachineError("machines", "each [[machines]] entry must be a table")
    return Machine.from_dict(table)


_DECODE_LINE = re.compile(r"line (\d+)")
_TABLE_HEADER = re.compile(r"^\s*\[")
_MACHINES_HEADER = re.compile(r"^\s*\[\[\s*machines\s*\]\]")


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    lineno = getattr(exc, "lineno", None)  # Python 3.14 adds the attribute.
    if isinstance(lineno, int):
        return lineno
    match = _DECODE_LINE.search(str(exc))
    return int(match.group(1)) if match else None


def _find_line(text: str, table_index: int | None, field: str) -> int | None:
    """Find the line of `field` in the `table_index`-th [[machines]] table.

    With `table_index` None the key is looked up before the first table. Returns
    the table's header line when the key is absent there, or None.
    """
    key = re.compile(rf"^\s*[\"']?{re.escape(field)}[\"']?\s*=")
    lines = text.splitlines()
    start, header_line = 0, None
    if table_index is not None:
        headers = [n for n, line in enumerate(lines) if _MACHINES_HEADER.match(line)]
        if table_index >= len(headers):
            return None
        start = header_line = headers[table_index] + 1
    for number in range(start, len(lines)):
        if _TABLE_HEADER.match(lines[number]):
            break
        if key.match(lines[number]):
            return number + 1
    return header_line
