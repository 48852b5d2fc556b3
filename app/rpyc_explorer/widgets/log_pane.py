"""The log pane: every connection's log, filtered by machine and level, exportable.

`QtLogHandler` is a `logging.Handler` that may be called from any thread. It formats
and redacts the record there and emits a `LogEntry` through a QObject signal. The
queued connection then delivers the entry to the pane on the GUI thread. The session
layer keeps secrets out of its log lines, and `redact()` is a last line of defence
for `password=...`-style text.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rpyc_explorer import icons
from rpyc_explorer.machines.atomic import atomic_write

log = logging.getLogger(__name__)

ALL_MACHINES = ""
MAX_ENTRIES = 20_000
LEVELS = (
    ("Debug", logging.DEBUG),
    ("Info", logging.INFO),
    ("Warning", logging.WARNING),
    ("Error", logging.ERROR),
)

# key=value, key: value and key "value" forms of credential-like names. The value runs
# to the next whitespace, comma, semicolon or closing quote.
_SECRET_PATTERN = re.compile(
    r"""(?P<key>\b(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key)\b
        ["']?\s*[=:]\s*["']?)
        (?P<value>[^\s,;'"]+)""",
    re.IGNORECASE | re.VERBOSE,
)
REDACTED = "********"


def redact(text: str) -> str:
    """Replace the value of anything that looks like `password=value` in `text`."""
    return _SECRET_PATTERN.sub(lambda m: m.group("key") + REDACTED, text)


class RedactionFilter(logging.Filter):
    """A logging filter that redacts credential-like values in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


@dataclass(frozen=True)
class LogEntry:
    """One line of the log pane.

    Attributes:
        created: time.time() of the record.
        level: the logging level number.
        machine_id: the key of the machine the line belongs to (its name, or its id
            when the record carries no name), or "" when none.
        machine_name: that machine's name for the machine combo, or "".
        text: the formatted, redacted line (may span lines for tracebacks).
        subject: for a record without a machine, the first %-argument of a
            message that starts with "%s: " (the engine names the machine alias
            first that way), else "". The pane files the line under that machine
            when the subject is the id of a registered machine.
    """

    created: float
    level: int
    machine_id: str
    machine_name: str
    text: str
    subject: str = ""


def _machine_of(record: logging.LogRecord) -> tuple[str, str]:
    machine = getattr(record, "machine", None)
    machine_id = getattr(record, "machine_id", None)
    name = getattr(record, "machine_name", None)
    if machine is not None and hasattr(machine, "id"):
        machine_id = machine_id or machine.id
        name = name or getattr(machine, "name", "")
    elif isinstance(machine, str):
        name = name or machine
    # The pane keys lines by machine name, because the session layer's log adapter
    # records only the name and the machine combo shows names.
    key = str(name or machine_id or "")
    return key, key


def _subject_of(record: logging.LogRecord) -> str:
    args = record.args
    if not isinstance(record.msg, str) or not record.msg.startswith("%s: "):
        return ""
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return ""


class _Bridge(QObject):
    entry = Signal(object)


class QtLogHandler(logging.Handler):
    """A thread-safe handler that forwards records to the GUI thread as `LogEntry`.

    Create it on the GUI thread (its QObject must live there). Records carry their
    machine in an ``extra`` field: ``machine`` (a Machine or a name), ``machine_id`` or
    ``machine_name``.
    """

    def __init__(self, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.bridge = _Bridge()
        self.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(levelname)-7s %(message)s",
                "%H:%M:%S",
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(self.format(record))
            machine_id, machine_name = _machine_of(record)
            subject = "" if machine_id else _subject_of(record)
            entry = LogEntry(
                record.created, record.levelno, machine_id, machine_name, text, subject
            )
            self.bridge.entry.emit(entry)
        except RuntimeError:
            # The bridge was deleted at shutdown; drop the record.
            pass
        except Exception:
            self.handleError(record)


class LogPane(QWidget):
    """Log lines of every connection, with machine and level filters and export."""

    # A file was written by Export; carries its path.
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: collections.deque[LogEntry] = collections.deque(
            maxlen=MAX_ENTRIES
        )
        self._machine_names: dict[str, str] = {}

        self.machine_combo = QComboBox(self)
        self.machine_combo.addItem("All machines", ALL_MACHINES)
        self.machine_combo.setMinimumContentsLength(16)
        self.level_combo = QComboBox(self)
        for label, level in LEVELS:
            self.level_combo.addItem(label, level)
        self.level_combo.setCurrentIndex(1)
        self.clear_button = QToolButton(self)
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear the log pane")
        self.export_button = QToolButton(self)
        self.export_button.setText("Export…")
        self.export_button.setToolTip("Save the lines shown to a file")
        self.export_button.setIcon(icons.icon("export"))
        self.export_button.setToolButtonStyle(
            Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        )
        self.view = QPlainTextEdit(self)
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(MAX_ENTRIES)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Machine:", self))
        bar.addWidget(self.machine_combo)
        bar.addWidget(QLabel("Level:", self))
        bar.addWidget(self.level_combo)
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.view)

        # The view follows new lines while it shows the end, and stays put when the
        # user scrolled up. Following the range, not each append, also covers the
        # horizontal scroll bar that a wide line adds after it was appended.
        self._follow = True
        scrollbar = self.view.verticalScrollBar()
        scrollbar.valueChanged.connect(self._on_scrolled)
        scrollbar.rangeChanged.connect(self._on_range_changed)

        self.machine_combo.currentIndexChanged.connect(self._render)
        self.level_combo.currentIndexChanged.connect(self._render)
        self.clear_button.clicked.connect(self.clear)
        self.export_button.clicked.connect(self.export)

    def _on_scrolled(self, value: int) -> None:
        self._follow = value >= self.view.verticalScrollBar().maximum()

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow:
            self.view.verticalScrollBar().setValue(maximum)

    # -- input -----------------------------------------------------------------------

    def attach(self, handler: QtLogHandler) -> None:
        """Show every entry `handler` forwards."""
        handler.bridge.entry.connect(self.add_entry)

    @Slot(object)
    def add_entry(self, entry: LogEntry) -> None:
        """Store an entry and show it when it passes the filters."""
        if not entry.machine_id and entry.subject in self._machine_names:
            name = self._machine_names[entry.subject]
            entry = replace(
                entry, machine_id=entry.subject, machine_name=name
            )
        self._entries.append(entry)
        if entry.machine_id:
            self.register_machine(entry.machine_id, entry.machine_name)
        if self._passes(entry):
            self.view.appendPlainText(entry.text)

    def add_line(
        self, machine_id: str, machine_name: str, text: str, level: int = logging.INFO
    ) -> None:
        """Add a plain line, such as a session's `log` signal, for one machine."""
        now = time.time()
        stamp = (
            time.strftime("%H:%M:%S", time.localtime(now))
            + f".{int(now % 1 * 1000):03d}"
        )
        prefix = f"{machine_name}: " if machine_name else ""
        line = f"{stamp} {logging.getLevelName(level):<7s} {prefix}{text}"
        self.add_entry(LogEntry(now, level, machine_id, machine_name, redact(line)))

    def register_machine(self, machine_id: str, name: str) -> None:
        """Offer a machine in the machine combo (updates its name when it changed)."""
        name = name or machine_id
        if self._machine_names.get(machine_id) == name:
            return
        self._machine_names[machine_id] = name
        index = self.machine_combo.findData(machine_id)
        if index < 0:
            self.machine_combo.addItem(name, machine_id)
        else:
            self.machine_combo.setItemText(index, name)

    def show_machine(self, machine_id: str) -> None:
        """Select one machine's lines ("" selects all machines)."""
        index = self.machine_combo.findData(machine_id)
        self.machine_combo.setCurrentIndex(max(index, 0))

    def clear(self) -> None:
        """Forget every stored entry."""
        self._entries.clear()
        self.view.clear()

    def refresh_icons(self) -> None:
        """Redraw the export icon (after the palette changed)."""
        self.export_button.setIcon(icons.icon("export"))

    # -- filtering -------------------------------------------------------------------

    def visible_lines(self) -> list[str]:
        """Return the lines that pass the current filters, oldest first."""
        return [entry.text for entry in self._entries if self._passes(entry)]

    def _passes(self, entry: LogEntry) -> bool:
        machine_id = self.machine_combo.currentData()
        if machine_id and entry.machine_id != machine_id:
            return False
        return entry.level >= int(self.level_combo.currentData())

    def _render(self) -> None:
        self.view.setPlainText("\n".join(self.visible_lines()))
        scrollbar = self.view.verticalScrollBar()
        scrollbar.setValue(scrollbar.maximum())

    # -- export ----------------------------------------------------------------------

    def export(self) -> None:
        """Ask for a file name and write the lines shown there."""
        default = Path.home() / f"rpyc-explorer-{time.strftime('%Y%m%d-%H%M%S')}.log"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export log", str(default), "Log files (*.log);;All files (*)"
        )
        if not path:
            return
        try:
            self.export_to(Path(path))
        except OSError as exc:
            log.error("log pane: exporting to %s failed: %s", path, exc)
            QMessageBox.warning(
                self, "Export failed",
                f"Could not write the log to {path}:\n{exc}\n\n"
                "Choose a folder you can write to and try again.",
            )  # fmt: skip

    def export_to(self, path: Path) -> None:
        """Write the lines shown to `path` atomically (temp file, fsync, rename).

        Each line starts with its ISO 8601 date and time; the pane shows the time only.

        Raises:
            OSError: the file could not be written; an existing file is unchanged.
        """
        lines = [
            time.strftime("%Y-%m-%dT", time.localtime(entry.created)) + entry.text
            for entry in self._entries
            if self._passes(entry)
        ]
        text = "\n".join(lines) + "\n"
        atomic_write(Path(path), text.encode("utf-8"), mode=0o644)
        log.info("log pane: exported %d lines to %s", len(lines), path)
        self.exported.emit(str(path))
