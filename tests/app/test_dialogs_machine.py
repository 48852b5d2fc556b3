"""The machine dialog: fields, validation messages in place, the record it builds."""

from __future__ import annotations

from PySide6.QtCore import Qt
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.views.machine_dialog import MachineDialog


def make_dialog(qtbot, machine=None, **kwargs) -> MachineDialog:
    dialog = MachineDialog(machine, groups=["lab", "prod"], **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def test_machine_dialog_empty_host_message(qtbot):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "build-01")
    assert not dialog.ok_button.isEnabled()
    # No message for a field the user has not typed in yet.
    assert dialog._errors["host"].text() == ""
    qtbot.keyClicks(dialog.host_edit, "build-01.example")
    assert dialog._errors["host"].text() == ""
    assert dialog.ok_button.isEnabled()
    dialog.host_edit.clear()
    assert "host" in dialog._errors["host"].text().lower()
    assert not dialog.ok_button.isEnabled()


def test_machine_dialog_no_messages_before_typing(qtbot):
    dialog = make_dialog(qtbot)
    assert not dialog.ok_button.isEnabled()
    assert all(label.text() == "" for label in dialog._errors.values())
    host_y = dialog.host_edit.y()
    qtbot.keyClicks(dialog.name_edit, "x")
    dialog.name_edit.clear()
    assert "name" in dialog._errors["name"].text().lower()
    # The message fills a reserved line: the fields below stay where they were.
    assert dialog.host_edit.y() == host_y


def test_machine_dialog_host_placeholder_follows_kind(qtbot):
    dialog = make_dialog(qtbot)
    assert "ssh/config" in dialog.host_edit.placeholderText()
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("rpyc"))
    assert "ssh/config" not in dialog.host_edit.placeholderText()


def test_machine_dialog_port_out_of_range(qtbot):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "db")
    qtbot.keyClicks(dialog.host_edit, "db.example")
    qtbot.keyClicks(dialog.port_edit, "70000")
    assert "65535" in dialog._errors["port"].text()
    assert not dialog.ok_button.isEnabled()
    dialog.port_edit.clear()
    qtbot.keyClicks(dialog.port_edit, "2222")
    assert dialog._errors["port"].text() == ""
    assert dialog.ok_button.isEnabled()
    assert dialog.machine().port == 2222


def test_machine_dialog_missing_key_file(qtbot, tmp_path):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "web")
    qtbot.keyClicks(dialog.host_edit, "web.example")
    assert dialog.key_field.isHidden()
    dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("key"))
    assert dialog.key_field.isVisible()
    assert dialog._errors["key_path"].text() == ""
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.key_field.edit, str(tmp_path / "missing_ed25519"))
    assert "not found" in dialog._errors["key_path"].text()
    assert not dialog.ok_button.isEnabled()
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key; only its existence is checked\n")
    dialog.key_field.edit.setText(str(key))
    assert dialog._errors["key_path"].text() == ""
    assert dialog.ok_button.isEnabled()
    assert dialog.machine().key_path == str(key)
    assert dialog.remember_box.text() == "Remember key passphrase in keyring"


def test_machine_dialog_builds_record(qtbot):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "gw")
    qtbot.keyClicks(dialog.host_edit, "10.0.0.5")
    qtbot.keyClicks(dialog.user_edit, "admin")
    qtbot.keyClicks(dialog.jump_edit, "bastion.example")
    qtbot.keyClicks(dialog.python_edit, "/usr/bin/python3.11")
    dialog.group_combo.setCurrentText("lab")
    machine = dialog.machine()
    assert machine.kind == "ssh"
    assert machine.user == "admin"
    assert machine.jump_host == "bastion.example"
    assert machine.python == "/usr/bin/python3.11"
    assert machine.group == "lab"
    assert machine.port is None
    assert len(machine.id) == 32


def test_machine_dialog_rpyc_fields(qtbot, tmp_path):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "svc")
    qtbot.keyClicks(dialog.host_edit, "127.0.0.1")
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("rpyc"))
    assert dialog.rpyc_box.isVisible()
    assert not dialog.secret_box.isVisible()
    assert dialog.port_edit.placeholderText() == "18812"
    dialog.tls_box.setChecked(True)
    assert dialog.port_edit.placeholderText() == "18821"
    dialog.ca_field.edit.setText(str(tmp_path / "ca.pem"))
    assert "not found" in dialog._errors["rpyc_ca_certs"].text()
    assert not dialog.ok_button.isEnabled()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    dialog.ca_field.edit.clear()
    dialog.ca_field.edit.setText(str(tmp_path / "ca.pem"))
    assert dialog.ok_button.isEnabled()
    dialog.classic_box.setChecked(False)
    machine = dialog.machine()
    assert machine.kind == "rpyc"
    assert machine.rpyc_tls is True
    assert machine.rpyc_classic is False
    assert machine.rpyc_ca_certs == str(tmp_path / "ca.pem")


def test_machine_dialog_edit_keeps_id(qtbot):
    original = Machine.new("old", host="old.example", group="prod", port=2200)
    dialog = make_dialog(qtbot, original)
    assert dialog.name_edit.text() == "old"
    assert dialog.port_edit.text() == "2200"
    assert dialog.group_combo.currentText() == "prod"
    dialog.name_edit.setText("new")
    edited = dialog.machine()
    assert edited.id == original.id
    assert edited.name == "new"


def test_machine_dialog_remember_hidden_without_keyring(qtbot):
    dialog = make_dialog(qtbot, can_remember=False, keyring_missing=True)
    dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("password"))
    assert dialog.secret_box.isVisible()
    assert dialog.remember_box.isHidden()
    assert dialog.notice_label.isVisible()
    assert "asked every time" in dialog.notice_label.text()
    assert dialog.secret_answer().secret is None


def test_machine_dialog_secret_answer(qtbot):
    dialog = make_dialog(qtbot)
    qtbot.keyClicks(dialog.name_edit, "pw")
    qtbot.keyClicks(dialog.host_edit, "pw.example")
    dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("password"))
    assert dialog.remember_box.isVisible()
    dialog.remember_box.setChecked(True)
    qtbot.keyClicks(dialog.secret_edit, "hunter2")
    answer = dialog.secret_answer()
    assert answer.secret == "hunter2"
    assert answer.remember is True


def test_machine_dialog_enter_blocked_while_invalid(qtbot):
    dialog = make_dialog(qtbot)
    qtbot.keyClick(dialog.name_edit, Qt.Key.Key_Return)
    assert dialog.isVisible()


def test_ssh_import_dialog_lists_hosts(qtbot, tmp_path):
    from rpyc_explorer.machines.ssh_config import read_ssh_config
    from rpyc_explorer.views.ssh_import_dialog import SshImportDialog

    config = tmp_path / "config"
    config.write_text(
        "Host web\n  HostName web.example\n  User deploy\n"
        "Host db\n  HostName 10.0.0.9\n  Port 2222\n"
        "Host *.internal\n  User ops\n"
    )
    candidates = read_ssh_config(config)
    dialog = SshImportDialog(candidates, existing_names={"db"}, source=str(config))
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.tree.topLevelItemCount() == 2
    assert dialog.tree.topLevelItem(0).text(1) == "deploy@web.example:22"
    assert dialog.tree.topLevelItem(1).checkState(0) == Qt.CheckState.Unchecked
    assert [m.name for m in dialog.selected()] == ["web"]
    dialog.none_button.click()
    assert dialog.selected() == []
    assert not dialog.ok_button.isEnabled()
    dialog.all_button.click()
    assert [m.name for m in dialog.selected()] == ["web", "db"]
    assert dialog.ok_button.isEnabled()
