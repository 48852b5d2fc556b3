"""Dialogs for SSH host keys: an unknown key to confirm, and a changed key to reject.

For an unknown key the safe choice is the default. Cancel is the default button, so
Enter never accepts a key by accident. A changed key has no accept path at all. The
user removes the old key with "Forget host key…" in the machine's context menu once
they have checked the new key out of band.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rpyc_explorer import icons


class HostKeyChoice(str, enum.Enum):
    """The user's decision on an unknown host key."""

    ACCEPT_AND_SAVE = "accept-and-save"
    ACCEPT_ONCE = "accept-once"
    CANCEL = "cancel"


def _fingerprint_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _header(icon_role: str, text: str, parent: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    picture = QLabel(parent)
    picture.setPixmap(icons.icon(icon_role).pixmap(40, 40))
    picture.setAlignment(Qt.AlignmentFlag.AlignTop)
    message = QLabel(text, parent)
    message.setWordWrap(True)
    row.addWidget(picture)
    row.addWidget(message, 1)
    return row


class HostKeyDialog(QDialog):
    """Asks whether to trust a host key seen for the first time.

    Args:
        host: the host name or address as configured.
        port: the SSH port.
        key_type: the key algorithm, e.g. "ssh-ed25519".
        fingerprint: the key's SHA-256 fingerprint ("SHA256:..." as OpenSSH prints it).
        parent: the parent window.
    """

    def __init__(
        self,
        host: str,
        port: int,
        key_type: str,
        fingerprint: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Unknown host key")
        self.choice = HostKeyChoice.CANCEL
        text = (
            f"<b>The authenticity of host {host} (port {port}) cannot be "
            "established.</b><br>This is the first connection to it, so there is no "
            "saved key to compare with. Check the fingerprint below against one you "
            "got from the host's administrator or console before you accept it."
        )
        form = QFormLayout()
        form.addRow("Host:", QLabel(host, self))
        form.addRow("Port:", QLabel(str(port), self))
        form.addRow("Key type:", QLabel(key_type, self))
        self.fingerprint_label = _fingerprint_label(fingerprint, self)
        form.addRow("SHA-256 fingerprint:", self.fingerprint_label)

        self.buttons = QDialogButtonBox(self)
        self.accept_save_button = QPushButton("Accept and save", self)
        self.accept_save_button.setToolTip(
            "Trust this key now and on later connections"
        )
        self.accept_once_button = QPushButton("Accept once", self)
        self.accept_once_button.setToolTip("Trust this key for this connection only")
        self.cancel_button = QPushButton("Cancel", self)
        role = QDialogButtonBox.ButtonRole
        self.buttons.addButton(self.accept_save_button, role.AcceptRole)
        self.buttons.addButton(self.accept_once_button, role.AcceptRole)
        self.buttons.addButton(self.cancel_button, role.RejectRole)
        for button in (self.accept_save_button, self.accept_once_button):
            button.setAutoDefault(False)
            button.setDefault(False)
        self.cancel_button.setAutoDefault(True)
        self.cancel_button.setDefault(True)
        self.accept_save_button.clicked.connect(
            lambda: self._finish(HostKeyChoice.ACCEPT_AND_SAVE)
        )
        self.accept_once_button.clicked.connect(
            lambda: self._finish(HostKeyChoice.ACCEPT_ONCE)
        )
        self.cancel_button.clicked.connect(lambda: self._finish(HostKeyChoice.CANCEL))

        layout = QVBoxLayout(self)
        layout.addLayout(_header("key", text, self))
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(540)
        # Word-wrapped labels need the height for the final width, not the default.
        self.adjustSize()

    def _finish(self, choice: HostKeyChoice) -> None:
        self.choice = choice
        if choice is HostKeyChoice.CANCEL:
            self.reject()
        else:
            self.accept()

    def reject(self) -> None:
        # Escape and the window's close button land here as well.
        self.choice = HostKeyChoice.CANCEL
        super().reject()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.cancel_button.setFocus()


class ChangedHostKeyDialog(QDialog):
    """Stops a connection whose host key differs from the saved one.

    There is deliberately no way to accept the new key here.
    """

    def __init__(
        self,
        host: str,
        port: int,
        key_type: str,
        old_fingerprint: str,
        new_fingerprint: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Host key changed")
        text = (
            f"<b>The host key of {host} (port {port}) has changed. The connection "
            "was stopped.</b><br>Someone could be intercepting the connection (a "
            "man-in-the-middle attack), or the host was reinstalled or its keys were "
            "replaced. Ask the host's administrator whether the key changed and "
            "compare the new fingerprint with theirs. Only then remove the old key "
            "with <i>Forget host key…</i> in the machine's context menu and connect "
            "again."
        )
        form = QFormLayout()
        form.addRow("Host:", QLabel(f"{host}, port {port}", self))
        self.old_label = _fingerprint_label(old_fingerprint, self)
        # Saved keys carry the file they are in, which can be a long path.
        self.old_label.setWordWrap(True)
        # Saved keys name their type, so the offered one does too.
        self.new_label = _fingerprint_label(f"{key_type} {new_fingerprint}", self)
        form.addRow("Saved fingerprint:", self.old_label)
        form.addRow("Offered fingerprint:", self.new_label)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(_header("shield-alert", text, self))
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(640)
        self.adjustSize()
