"""The panel shown in a machine's tab while it connects, and when connecting failed.

It lists the phases of the connection with a mark for each (waiting, running, done,
failed), a progress bar and Cancel. On failure it shows which phase failed, why, and
what to try, and offers the log, Retry and Close.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from rpyc_explorer import icons

PHASE_LABELS: dict[str, str] = {
    "connecting": "Connecting",
    "authenticating": "Authenticating",
    "finding-python": "Finding Python",
    "uploading": "Uploading the server",
    "starting": "Starting the server",
    "handshake": "Handshake",
}

PHASES_BY_KIND: dict[str, tuple[str, ...]] = {
    "ssh": ("connecting", "authenticating", "finding-python", "uploading", "starting",
            "handshake"),
    "local": ("connecting", "finding-python", "uploading", "starting", "handshake"),
    "rpyc": ("connecting", "handshake"),
}  # fmt: skip

# Advice shown when a phase fails and the session layer gave no hint of its own.
PHASE_HINTS: dict[str, str] = {
    "connecting": "Check the host name, the port and that the host is reachable "
    "(try `ssh HOST` in a terminal); check the jump host if one is set.",
    "authenticating": "Check the user name and the authentication method; for a key, "
    "check the key file and its passphrase; for the agent, run `ssh-add -l`.",
    "finding-python": "Install Python 3.8 or newer on the host, or set the Python "
    "interpreter in the machine's settings.",
    "uploading": "The server code is sent over the SSH session and kept in memory, "
    "so no disk space is needed; open the log to see whether the connection dropped "
    "or the remote Python stopped while reading it.",
    "starting": "Open the log for the server's output; the Python interpreter may be "
    "too old or missing a standard module.",
    "handshake": "Check that the server at this port is an RPyC server, and that TLS "
    "and the certificates match its settings.",
}

# Phase state -> (icon role, colour) of its mark.
_MARKS = {"done": ("success", "#2ea043"), "failed": ("error", "#d73a49")}


class ConnectProgress(QWidget):
    """Phases, progress and Cancel for one connecting machine.

    Args:
        machine_name: the name shown in the title.
        target: a short "user@host:port" label.
        phases: the phase names in order (keys of PHASE_LABELS).
        parent: the parent widget.
    """

    # The user pressed Cancel while connecting.
    cancel_requested = Signal()
    # The user pressed Retry after a failure.
    retry_requested = Signal()
    # The user pressed Close after a failure.
    close_requested = Signal()
    # The user asked for this machine's log.
    show_log_requested = Signal()
    # The user asked to forget the remembered password or passphrase, then retry.
    forget_secret_requested = Signal()

    def __init__(
        self,
        machine_name: str,
        target: str,
        phases: tuple[str, ...],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.phases = tuple(phases)
        self.target = target
        self.current_phase = ""
        self.failed_phase = ""
        self._marks: dict[str, QLabel] = {}
        self._labels: dict[str, QLabel] = {}
        self._states: dict[str, str] = {phase: "waiting" for phase in self.phases}

        self.title = QLabel(f"<h3>Connecting to {machine_name}</h3>{target}", self)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        for row, phase in enumerate(self.phases):
            mark = QLabel(self)
            mark.setFixedSize(20, 20)
            label = QLabel(PHASE_LABELS.get(phase, phase), self)
            grid.addWidget(mark, row, 0)
            grid.addWidget(label, row, 1)
            self._marks[phase] = mark
            self._labels[phase] = label
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("Starting…", self)
        self.status_label.setWordWrap(True)
        self.error_frame = self._build_error_frame()
        self.cancel_button = QPushButton(icons.icon("cancel"), "Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_requested)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        box = QVBoxLayout()
        box.addWidget(self.title)
        box.addLayout(grid)
        box.addWidget(self.progress_bar)
        box.addWidget(self.status_label)
        box.addWidget(self.error_frame)
        box.addLayout(buttons)
        holder = QWidget(self)
        holder.setLayout(box)
        holder.setMinimumWidth(420)
        holder.setMaximumWidth(640)
        # Stretches rather than an alignment flag centre the panel: with an alignment
        # the layout ignores heightForWidth and cuts off the wrapped error text.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(holder, 4)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self._paint_marks()

    def _build_error_frame(self) -> QFrame:
        frame = QFrame(self)
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(frame)

        header = QHBoxLayout()
        picture = QLabel(frame)
        picture.setPixmap(icons.icon("error").pixmap(32, 32))
        picture.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.error_label = QLabel(frame)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )

        # A long message (a changed host key) scrolls instead of being cut off when
        # the log dock leaves the panel little height.
        self.error_scroll = QScrollArea(frame)
        self.error_scroll.setWidget(self.error_label)
        self.error_scroll.setWidgetResizable(True)
        self.error_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.error_scroll.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.error_scroll.setMinimumHeight(4 * self.fontMetrics().lineSpacing())
        header.addWidget(picture)
        header.addWidget(self.error_scroll, 1)

        self.log_button = QPushButton(icons.icon("log"), "Show log", frame)
        self.retry_button = QPushButton(icons.icon("reconnect"), "Retry", frame)
        self.close_button = QPushButton(icons.icon("close-tab"), "Close", frame)
        self.forget_button = QPushButton(
            icons.icon("forget-key"), "Forget saved password and retry", frame
        )
        self.forget_button.hide()
        self.forget_button.clicked.connect(self.forget_secret_requested)
        self.log_button.clicked.connect(self.show_log_requested)
        self.retry_button.clicked.connect(self.retry_requested)
        self.close_button.clicked.connect(self.close_requested)

        row = QHBoxLayout()
        row.addWidget(self.log_button)
        row.addStretch(1)
        row.addWidget(self.forget_button)
        row.addWidget(self.retry_button)
        row.addWidget(self.close_button)

        layout.addLayout(header)
        layout.addLayout(row)
        frame.hide()
        return frame

    # -- updates -----------------------------------------------------------------------

    def set_phase(self, phase: str, detail: str = "") -> None:
        """Mark `phase` as running and every earlier phase as done."""
        if phase not in self._states:
            # A phase this kind does not list (the session layer may add some): show
            # it as status text only.
            self.status_label.setText(detail or PHASE_LABELS.get(phase, phase))
            return
        self.current_phase = phase
        index = self.phases.index(phase)
        for position, name in enumerate(self.phases):
            if position < index:
                self._states[name] = "done"
            elif position == index:
                self._states[name] = "running"
        self.status_label.setText(detail or f"{PHASE_LABELS.get(phase, phase)}…")
        if self.progress_bar.value() < int(100 * index / len(self.phases)):
            self.progress_bar.setValue(int(100 * index / len(self.phases)))
        self._paint_marks()

    def set_progress(self, fraction: float | None) -> None:
        """Show how far the current phase is, from 0.0 to 1.0; None means unknown.

        The bar shows overall progress: each phase is an equal share of it.
        """
        if fraction is None or self.current_phase not in self.phases:
            return
        index = self.phases.index(self.current_phase)
        share = max(0.0, min(1.0, fraction))
        overall = int(100 * (index + share) / len(self.phases))
        self.progress_bar.setValue(max(self.progress_bar.value(), overall))

    def set_failed(self, phase: str, reason: str, hint: str = "") -> None:
        """Show that `phase` failed with `reason` and what to try."""
        phase = phase or self.current_phase
        self.failed_phase = phase
        if phase in self._states:
            failed_at = self.phases.index(phase)
            self._states[phase] = "failed"
            for name in self.phases[failed_at + 1 :]:
                self._states[name] = "waiting"
        self._paint_marks()
        label = PHASE_LABELS.get(phase, phase or "connecting").lower()
        hint = hint or PHASE_HINTS.get(phase, "Open the log for details.")
        if phase == "connecting":
            headline = f"Could not connect to {_escape(self.target)}."
        else:
            headline = f"Connecting failed while {label}."
        self.error_label.setText(
            f"<b>{headline}</b><br>{_escape(reason)}"
            f"<br><br><b>What to try:</b> {_escape(hint)}"
        )
        self.title.setText(
            self.title.text().replace("Connecting to", "Could not connect to")
        )
        self.status_label.hide()
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.error_frame.show()

    def offer_forget_secret(self) -> None:
        """Show the button that deletes a rejected remembered secret and retries."""
        self.forget_button.show()

    def set_cancelling(self) -> None:
        """Show that a cancel is in progress."""
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling…")

    def phase_state(self, phase: str) -> str:
        """Return "waiting", "running", "done" or "failed" for a phase."""
        return self._states[phase]

    def refresh_icons(self) -> None:
        """Redraw the phase marks (after the palette changed)."""
        self._paint_marks()

    def _paint_marks(self) -> None:
        for phase, mark in self._marks.items():
            state = self._states[phase]
            if state == "running":
                mark.setPixmap(icons.status_icon("connecting").pixmap(16, 16))
            elif state in _MARKS:
                role, color = _MARKS[state]
                mark.setPixmap(icons.icon(role, color).pixmap(16, 16))
            else:
                mark.setPixmap(icons.status_icon("disconnected").pixmap(16, 16))
            self._labels[phase].setEnabled(state != "waiting")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
