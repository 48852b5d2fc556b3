"""The dialog that adds or edits one machine.

Every field is checked as it changes; a message appears under the offending field
and OK stays disabled until all fields are valid. The dialog never writes anything:
the caller reads `machine()` and `secret_answer()` and stores them.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rpyc_explorer.machines.record import (
    DEFAULT_RPYC_PORT,
    DEFAULT_RPYC_TLS_PORT,
    DEFAULT_SSH_PORT,
    InvalidMachineError,
    Machine,
)
from rpyc_explorer.views.password_dialog import SecretAnswer

KIND_LABELS = (("SSH (deploy a server)", "ssh"), ("Existing RPyC server", "rpyc"))
AUTH_LABELS = (("SSH agent", "agent"), ("Key file", "key"), ("Password", "password"))
ERROR_STYLE = "color: #d73a49;"
NO_KEYRING_NOTICE = (
    "No keyring is available here, so passwords and passphrases are asked every "
    "time you connect."
)
POLICY_NOTICE = (
    "Your site configuration does not allow saving secrets, so passwords and "
    "passphrases are asked every time you connect."
)


def _expand(path: str) -> Path:
    return Path(os.path.expanduser(path.strip()))


def _error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    # The line keeps its height while empty, so fields do not move when it fills.
    label.setMinimumHeight(label.fontMetrics().lineSpacing())
    return label


class _FileField(QWidget):
    """A line edit with a "Browse…" button that opens a file chooser."""

    def __init__(self, caption: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(self)
        self.button = QPushButton("Browse…", self)
        self.button.setAutoDefault(False)
        self._caption = caption
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)
        self.button.clicked.connect(self.browse)

    def browse(self) -> None:
        start = self.edit.text().strip() or str(Path.home() / ".ssh")
        path, _ = QFileDialog.getOpenFileName(
            self, self._caption, os.path.expanduser(start)
        )
        if path:
            self.edit.setText(path)


class MachineDialog(QDialog):
    """Adds or edits a machine of kind "ssh" or "rpyc".

    Args:
        machine: the machine to edit, or None to add a new one.
        groups: existing group names offered in the group combo.
        can_remember: show the "remember in keyring" part (False when the site
            policy forbids saving secrets or no keyring exists).
        keyring_missing: no keyring backend exists; explains why secrets are asked.
        parent: the parent window.
    """

    def __init__(
        self,
        machine: Machine | None = None,
        groups: list[str] | None = None,
        can_remember: bool = True,
        keyring_missing: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._original = machine
        self._can_remember = can_remember
        self.setWindowTitle("Edit machine" if machine else "Add machine")
        self._errors: dict[str, QLabel] = {}
        # Fields whose message is shown: those the user changed or left, and every
        # field of a machine being edited. OK follows every field regardless.
        self._touched: set[str] = set()
        self._build_fields(groups or [])
        self._build_rpyc_box()
        self._build_secret_box(keyring_missing)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.rpyc_box)
        layout.addWidget(self.secret_box)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        if machine is not None:
            self._load(machine)
            self._touched.update(self._errors)
        self._connect_checks()
        self._update_visibility()
        self.validate()

    # -- building ----------------------------------------------------------------------

    def _add_row(self, label: str, key: str, widget: QWidget) -> None:
        self.form.addRow(label, widget)
        error = _error_label(self)
        self._errors[key] = error
        self.form.addRow("", error)

    def _build_fields(self, groups: list[str]) -> None:
        self.form = QFormLayout()
        self.name_edit = QLineEdit(self)
        self.kind_combo = QComboBox(self)
        for label, kind in KIND_LABELS:
            self.kind_combo.addItem(label, kind)
        self.host_edit = QLineEdit(self)
        self.port_edit = QLineEdit(self)
        self.port_edit.setMaxLength(5)
        self.user_edit = QLineEdit(self)
        self.user_edit.setPlaceholderText("default: as OpenSSH decides")
        self.auth_combo = QComboBox(self)
        for label, auth in AUTH_LABELS:
            self.auth_combo.addItem(label, auth)
        self.key_field = _FileField("Choose a private key", self)
        self.jump_edit = QLineEdit(self)
        self.jump_edit.setPlaceholderText("[user@]host[:port], optional")
        self.python_edit = QLineEdit(self)
        self.python_edit.setPlaceholderText("found automatically")
        self.group_combo = QComboBox(self)
        self.group_combo.setEditable(True)
        self.group_combo.addItem("")
        self.group_combo.addItems(groups)

        self._add_row("&Name:", "name", self.name_edit)
        self._add_row("&Kind:", "kind", self.kind_combo)
        self._add_row("&Host:", "host", self.host_edit)
        self._add_row("&Port:", "port", self.port_edit)
        self._add_row("&User:", "user", self.user_edit)
        self._add_row("&Authentication:", "auth", self.auth_combo)
        self._add_row("Key &file:", "key_path", self.key_field)
        self._add_row("&Jump host:", "jump_host", self.jump_edit)
        self._add_row("P&ython:", "python", self.python_edit)
        self._add_row("&Group:", "group", self.group_combo)

    def _build_rpyc_box(self) -> None:
        self.rpyc_box = QGroupBox("RPyC server", self)
        form = QFormLayout(self.rpyc_box)
        self.tls_box = QCheckBox("Use TLS", self.rpyc_box)
        self.certfile_field = _FileField("Choose a client certificate", self.rpyc_box)
        self.keyfile_field = _FileField("Choose the client key", self.rpyc_box)
        self.ca_field = _FileField("Choose the CA bundle", self.rpyc_box)
        self.classic_box = QCheckBox("Classic (slave) service", self.rpyc_box)
        self.classic_box.setChecked(True)
        form.addRow(self.tls_box)
        for label, key, field in (
            ("Certificate:", "rpyc_certfile", self.certfile_field),
            ("Key:", "rpyc_keyfile", self.keyfile_field),
            ("CA bundle:", "rpyc_ca_certs", self.ca_field),
        ):
            form.addRow(label, field)
            error = _error_label(self.rpyc_box)
            self._errors[key] = error
            form.addRow("", error)
        form.addRow(self.classic_box)

    def _build_secret_box(self, keyring_missing: bool) -> None:
        self.secret_box = QGroupBox("Saved secret", self)
        form = QFormLayout(self.secret_box)
        self.secret_edit = QLineEdit(self.secret_box)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_edit.setPlaceholderText("leave empty to keep the saved one")
        self.remember_box = QCheckBox("Remember password in keyring", self.secret_box)
        self.secret_label = QLabel("Password:", self.secret_box)
        form.addRow(self.remember_box)
        form.addRow(self.secret_label, self.secret_edit)
        self.notice_label = QLabel(
            NO_KEYRING_NOTICE if keyring_missing else POLICY_NOTICE, self
        )
        self.notice_label.setWordWrap(True)
        form.addRow(self.notice_label)
        self.remember_box.setVisible(self._can_remember)
        self.secret_label.setVisible(self._can_remember)
        self.secret_edit.setVisible(self._can_remember)
        self.notice_label.setVisible(not self._can_remember)

    def _load(self, machine: Machine) -> None:
        self.name_edit.setText(machine.name)
        self.kind_combo.setCurrentIndex(max(self.kind_combo.findData(machine.kind), 0))
        self.host_edit.setText(machine.host)
        self.port_edit.setText("" if machine.port is None else str(machine.port))
        self.user_edit.setText(machine.user)
        self.auth_combo.setCurrentIndex(max(self.auth_combo.findData(machine.auth), 0))
        self.key_field.edit.setText(machine.key_path)
        self.jump_edit.setText(machine.jump_host)
        self.python_edit.setText(machine.python)
        self.group_combo.setCurrentText(machine.group)
        self.tls_box.setChecked(machine.rpyc_tls)
        self.certfile_field.edit.setText(machine.rpyc_certfile)
        self.keyfile_field.edit.setText(machine.rpyc_keyfile)
        self.ca_field.edit.setText(machine.rpyc_ca_certs)
        self.classic_box.setChecked(machine.rpyc_classic)

    def _connect_checks(self) -> None:
        for key, edit in (
            ("name", self.name_edit),
            ("host", self.host_edit),
            ("port", self.port_edit),
            ("user", self.user_edit),
            ("key_path", self.key_field.edit),
            ("jump_host", self.jump_edit),
            ("python", self.python_edit),
            ("rpyc_certfile", self.certfile_field.edit),
            ("rpyc_keyfile", self.keyfile_field.edit),
            ("rpyc_ca_certs", self.ca_field.edit),
        ):
            edit.textChanged.connect(lambda _text, key=key: self._touch(key))
            edit.editingFinished.connect(lambda key=key: self._touch(key))
        for combo in (self.kind_combo, self.auth_combo):
            combo.currentIndexChanged.connect(self._update_visibility)
            combo.currentIndexChanged.connect(self.validate)
        self.tls_box.toggled.connect(self._update_visibility)
        self.tls_box.toggled.connect(self.validate)

    # -- state -------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The kind chosen: "ssh" or "rpyc"."""
        return str(self.kind_combo.currentData())

    @property
    def auth(self) -> str:
        """The SSH authentication chosen: "agent", "key" or "password"."""
        return str(self.auth_combo.currentData())

    def _touch(self, key: str) -> None:
        self._touched.add(key)
        self.validate()

    def _update_visibility(self) -> None:
        ssh = self.kind == "ssh"
        self.host_edit.setPlaceholderText(
            "host name, address or ~/.ssh/config alias"
            if ssh
            else "host name or address"
        )
        for widget in (
            self.user_edit,
            self.auth_combo,
            self.key_field,
            self.jump_edit,
            self.python_edit,
        ):
            self._set_row_visible(widget, ssh)
        self._set_row_visible(self.key_field, ssh and self.auth == "key")
        self.rpyc_box.setVisible(not ssh)
        tls = self.tls_box.isChecked()
        for field in (self.certfile_field, self.keyfile_field, self.ca_field):
            field.setEnabled(tls)
        if ssh:
            default_port = DEFAULT_SSH_PORT
        elif tls:
            default_port = DEFAULT_RPYC_TLS_PORT
        else:
            default_port = DEFAULT_RPYC_PORT
        self.port_edit.setPlaceholderText(str(default_port))
        self.secret_box.setVisible(ssh and self.auth in ("key", "password"))
        secret_name = "Key passphrase" if self.auth == "key" else "Password"
        self.secret_label.setText(f"{secret_name}:")
        self.remember_box.setText(f"Remember {secret_name.lower()} in keyring")
        self.adjustSize()

    def _set_row_visible(self, widget: QWidget, visible: bool) -> None:
        self.form.setRowVisible(widget, visible)
        if not visible:
            for key, error in self._errors.items():
                if self._field_widget(key) is widget:
                    self.form.setRowVisible(error, False)

    def _field_widget(self, key: str) -> QWidget | None:
        return {
            "user": self.user_edit, "auth": self.auth_combo, "key_path": self.key_field,
            "jump_host": self.jump_edit, "python": self.python_edit,
        }.get(key)  # fmt: skip

    # -- validation --------------------------------------------------------------------

    def field_errors(self) -> dict[str, str]:
        """Return a message per invalid field, keyed by Machine field name."""
        errors: dict[str, str] = {}
        if not self.name_edit.text().strip():
            errors["name"] = "Enter a name for the machine."
        host = self.host_edit.text().strip()
        if not host:
            errors["host"] = "Enter a host name or address."
        elif host.startswith("-") or any(c.isspace() for c in host):
            errors["host"] = "A host must not start with '-' or contain spaces."
        port_error = self._port_error()
        if port_error:
            errors["port"] = port_error
        if self.kind == "ssh":
            errors.update(self._ssh_errors())
        elif self.tls_box.isChecked():
            for key, field in (
                ("rpyc_certfile", self.certfile_field),
                ("rpyc_keyfile", self.keyfile_field),
                ("rpyc_ca_certs", self.ca_field),
            ):
                text = field.edit.text().strip()
                if text and not _expand(text).is_file():
                    errors[key] = f"File not found: {text}"
        if not errors:
            errors.update(self._record_errors())
        return errors

    def _port_error(self) -> str:
        text = self.port_edit.text().strip()
        if not text:
            return ""
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            return f"Port must be a number from 1 to 65535, not {text!r}."
        return ""

    def _ssh_errors(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        for key, edit in (("user", self.user_edit), ("jump_host", self.jump_edit)):
            value = edit.text().strip()
            if value.startswith("-") or any(c.isspace() for c in value):
                errors[key] = "This value must not start with '-' or contain spaces."
        if self.auth == "key":
            key_path = self.key_field.edit.text().strip()
            if not key_path:
                errors["key_path"] = "Choose the private key file."
            elif not _expand(key_path).is_file():
                errors["key_path"] = f"Key file not found: {key_path}"
        return errors

    def _record_errors(self) -> dict[str, str]:
        try:
            self.machine()
        except InvalidMachineError as exc:
            return {exc.field if exc.field in self._errors else "name": str(exc)}
        return {}

    def validate(self) -> bool:
        """Show or hide each field's message and enable OK; return True when valid."""
        errors = self.field_errors()
        for key, label in self._errors.items():
            label.setText(errors.get(key, "") if key in self._touched else "")
            if key not in ("rpyc_certfile", "rpyc_keyfile", "rpyc_ca_certs"):
                widget = self._field_widget(key)
                shown = widget is None or self.form.isRowVisible(widget)
                self.form.setRowVisible(label, shown)
        self.ok_button.setEnabled(not errors)
        return not errors

    # -- results -----------------------------------------------------------------------

    def machine(self) -> Machine:
        """Build the machine record from the fields (keeps the id when editing).

        Raises:
            InvalidMachineError: a field is invalid (the dialog's OK is disabled then).
        """
        ssh = self.kind == "ssh"
        port_text = self.port_edit.text().strip()
        fields = {
            "name": self.name_edit.text().strip(),
            "kind": self.kind,
            "host": self.host_edit.text().strip(),
            "port": int(port_text) if port_text.isdigit() else None,
            "user": self.user_edit.text().strip() if ssh else "",
            "auth": self.auth if ssh else "agent",
            "key_path": self.key_field.edit.text().strip()
            if ssh and self.auth == "key"
            else "",
            "jump_host": self.jump_edit.text().strip() if ssh else "",
            "python": self.python_edit.text().strip() if ssh else "",
            "group": self.group_combo.currentText().strip(),
            "rpyc_tls": (not ssh) and self.tls_box.isChecked(),
            "rpyc_certfile": "" if ssh else self.certfile_field.edit.text().strip(),
            "rpyc_keyfile": "" if ssh else self.keyfile_field.edit.text().strip(),
            "rpyc_ca_certs": "" if ssh else self.ca_field.edit.text().strip(),
            "rpyc_classic": True if ssh else self.classic_box.isChecked(),
        }
        if self._original is not None:
            return self._original.replace(**fields)
        return Machine.new(**fields)

    def secret_answer(self) -> SecretAnswer:
        """Return the secret to save: None when nothing was typed or it is not wanted.

        `remember` False with no secret means "delete any saved secret".
        """
        if not self._can_remember or not self.secret_box.isVisibleTo(self):
            return SecretAnswer(None, False)
        remember = self.remember_box.isChecked()
        text = self.secret_edit.text()
        return SecretAnswer(text if (remember and text) else None, remember)

    def set_remembered(self, remembered: bool) -> None:
        """Tick the remember box when a secret is already saved for this machine."""
        self.remember_box.setChecked(remembered)

    def accept(self) -> None:
        self._touched.update(self._errors)
        if self.validate():
            super().accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if (
            event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and not self.ok_button.isEnabled()
        ):
            return
        super().keyPressEvent(event)
