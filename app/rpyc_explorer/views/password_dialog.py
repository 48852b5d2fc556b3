"""Dialog that requests a password or a key passphrase during a connection."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class SecretAnswer:
    """Text the user typed, with `secret` None when they cancelled.

    The repr leaves the secret out so the object is safe to log by accident.
    """

    secret: str | None
    remember: bool = False

    def __repr__(self) -> str:
        given = "given" if self.secret is not None else "cancelled"
        return f"SecretAnswer({given}, remember={self.remember})"


class PasswordDialog(QDialog):
    """A prompt with a masked field and an optional "remember in keyring" box.

    Args:
        title: the window title, e.g. "Password for build-01".
        prompt: the prompt text from SSH or the session layer.
        can_remember: show the "remember in keyring" box (False when the policy
            forbids it or no keyring exists).
        parent: the parent window.
        notice: a note shown above the buttons, such as why the secret cannot be
            remembered; hidden when empty.
    """

    def __init__(
        self,
        title: str,
        prompt: str,
        can_remember: bool = True,
        parent: QWidget | None = None,
        notice: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.prompt_label = QLabel(prompt, self)
        self.prompt_label.setWordWrap(True)
        self.secret_edit = QLineEdit(self)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember_box = QCheckBox("Remember in keyring", self)
        self.remember_box.setVisible(can_remember)
        self.notice_label = QLabel(notice, self)
        self.notice_label.setWordWrap(True)
        self.notice_label.setVisible(bool(notice))
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt_label)
        layout.addWidget(self.secret_edit)
        layout.addWidget(self.remember_box)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(380)

    def answer(self) -> SecretAnswer:
        """Return the text the user typed, or a cancelled `SecretAnswer`."""
        if self.result() != QDialog.DialogCode.Accepted:
            return SecretAnswer(None)
        remember = not self.remember_box.isHidden() and self.remember_box.isChecked()
        return SecretAnswer(self.secret_edit.text(), remember)
