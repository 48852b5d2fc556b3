"""Per-machine console history, kept across restarts (Qt-free).

Entries are stored one JSON string per line, so multi-line entries survive, in
``<data dir>/history/<machine id>.jsonl``. The file is rewritten atomically (temp
file + rename).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

MAX_ENTRIES = 1000
_SAFE_ID = re.compile(r"[^A-Za-z0-9_.-]")


def history_path(data_dir: Path, machine_id: str) -> Path:
    """Return the history file of one machine under the application's data dir."""
    return data_dir / "history" / (_SAFE_ID.sub("_", machine_id) + ".jsonl")


class History:
    """Console entries with Up/Down navigation; `add` saves the file."""

    def __init__(self, path: Path | None, max_entries: int = MAX_ENTRIES) -> None:
        self.path = path
        self.max_entries = max_entries
        self.entries: list[str] = self._load()
        self._cursor = len(self.entries)
        self._draft = ""

    def _load(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        entries = []
        try:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    value = json.loads(line)
                except ValueError:
                    continue  # a damaged line costs one entry, not the history
                # Files written before trailing whitespace was dropped may hold it.
                if isinstance(value, str) and value.strip():
                    entries.append(value.rstrip())
        except OSError as exc:
            log.warning("cannot read console history %s: %s", self.path, exc)
        return entries[-self.max_entries :]

    def add(self, entry: str) -> None:
        """Append ``entry`` (unless it repeats the last one) and save.

        Trailing whitespace is dropped first: the console's auto-indent leaves an
        indented empty last line after a block, which would otherwise come back
        with every recalled entry. Indentation inside the entry is kept.
        """
        entry = entry.rstrip()
        if entry.strip() and (not self.entries or self.entries[-1] != entry):
            self.entries.append(entry)
            del self.entries[: -self.max_entries]
            self._save()
        self._cursor = len(self.entries)
        self._draft = ""

    def previous(self, current: str) -> str | None:
        """Return the entry before the cursor, or None at the oldest one."""
        if self._cursor == len(self.entries):
            self._draft = current
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.entries[self._cursor]

    def next(self) -> str | None:
        """Return the entry after the cursor, the draft past the newest, or None."""
        if self._cursor >= len(self.entries):
            return None
        self._cursor += 1
        if self._cursor == len(self.entries):
            return self._draft
        return self.entries[self._cursor]

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".history-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                for entry in self.entries:
                    handle.write(json.dumps(entry) + "\n")
            os.replace(temp, self.path)
        except OSError as exc:
            log.warning("cannot save console history %s: %s", self.path, exc)
