"""Host-key and password dialogs: defaults, choices and no accept path when changed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPushButton
from rpyc_explorer.views.host_key_dialog import (
    ChangedHostKeyDialog,
    HostKeyChoice,
    HostKeyDialog,
)
from rpyc_explorer.views.password_dialog import PasswordDialog

FINGERPRINT = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


def make_dialog(qtbot) -> HostKeyDialog:
    dialog = HostKeyDialog("build-01.example", 2222, "ssh-ed25519", FINGERPRINT)
    qtbot.addWidget(dialog)
    return dialog


def test_host_key_dialog_shows_fingerprint(qtbot):
    dialog = make_dialog(qtbot)
    assert dialog.fingerprint_label.text() == FINGERPRINT
    texts = [
        label.text() for label in dialog.findChildren(type(dialog.fingerprint_label))
    ]
    assert "2222" in texts
    assert "ssh-ed25519" in texts
    assert "build-01.example" in texts


def test_host_key_dialog_cancel_is_default(qtbot):
    dialog = make_dialog(qtbot)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.cancel_button.isDefault()
    assert not dialog.accept_save_button.isDefault()
    assert not dialog.accept_once_button.isDefault()
    assert not dialog.accept_save_button.autoDefault()
    assert not dialog.accept_once_button.autoDefault()


def test_host_key_dialog_enter_does_not_accept(qtbot):
    dialog = make_dialog(qtbot)
    dialog.show()
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(dialog.finished, timeout=2000):
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert dialog.choice is HostKeyChoice.CANCEL
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_host_key_dialog_buttons_return_choices(qtbot):
    cases = [
        (
            "accept_save_button",
            HostKeyChoice.ACCEPT_AND_SAVE,
            QDialog.DialogCode.Accepted,
        ),
        ("accept_once_button", HostKeyChoice.ACCEPT_ONCE, QDialog.DialogCode.Accepted),
        ("cancel_button", HostKeyChoice.CANCEL, QDialog.DialogCode.Rejected),
    ]
    for button_name, choice, code in cases:
        dialog = make_dialog(qtbot)
        dialog.show()
        with qtbot.waitSignal(dialog.finished, timeout=2000):
            qtbot.mouseClick(getattr(dialog, button_name), Qt.MouseButton.LeftButton)
        assert dialog.choice is choice, button_name
        assert dialog.result() == code, button_name


def test_host_key_dialog_escape_cancels(qtbot):
    dialog = make_dialog(qtbot)
    dialog.show()
    qtbot.waitExposed(dialog)
    with qtbot.waitSignal(dialog.finished, timeout=2000):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.choice is HostKeyChoice.CANCEL


def test_changed_key_dialog_has_no_accept_path(qtbot):
    dialog = ChangedHostKeyDialog(
        "build-01.example", 22, "ssh-ed25519", "SHA256:old", "SHA256:new"
    )
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.old_label.text() == "SHA256:old"
    assert dialog.new_label.text() == "ssh-ed25519 SHA256:new"
    roles = {dialog.buttons.buttonRole(b) for b in dialog.buttons.buttons()}
    assert roles == {QDialogButtonBox.ButtonRole.RejectRole}
    labels = [
        b.text().replace("&", "").lower() for b in dialog.findChildren(QPushButton)
    ]
    assert not any("accept" in label for label in labels)
    with qtbot.waitSignal(dialog.finished, timeout=2000):
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_password_dialog_returns_secret_and_remember(qtbot):
    dialog = PasswordDialog("Password for build-01", "root@build-01's password:")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.secret_edit, "s3cret")
    dialog.remember_box.setChecked(True)
    with qtbot.waitSignal(dialog.finished, timeout=2000):
        qtbot.keyClick(dialog.secret_edit, Qt.Key.Key_Return)
    answer = dialog.answer()
    assert answer.secret == "s3cret"
    assert answer.remember is True
    assert "s3cret" not in repr(answer)


def test_password_dialog_without_keyring_never_remembers(qtbot):
    dialog = PasswordDialog("Passphrase", "Passphrase for key:", can_remember=False)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.remember_box.isHidden()
    dialog.remember_box.setChecked(True)
    qtbot.keyClicks(dialog.secret_edit, "x")
    dialog.accept()
    assert dialog.answer().remember is False


def test_password_dialog_shows_notice_only_when_given(qtbot):
    plain = PasswordDialog("Password", "Password:")
    noted = PasswordDialog(
        "Password", "Password:", can_remember=False, notice="No keyring here."
    )
    for dialog in (plain, noted):
        qtbot.addWidget(dialog)
        dialog.show()
    assert plain.notice_label.isHidden()
    assert not noted.notice_label.isHidden()
    assert noted.notice_label.text() == "No keyring here."


def test_password_dialog_cancel_gives_no_secret(qtbot):
    dialog = PasswordDialog("Password", "Password:")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.secret_edit, "typed")
    dialog.reject()
    assert dialog.answer().secret is None
