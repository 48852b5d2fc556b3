"""The window against the throwaway sshd: host-key, changed-key and password dialogs.

Each test connects through the real window, answers the real dialogs the way a user
would, and checks what the window shows and what ends up on disk.
"""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from qt_wait import visible_child, wait_for_widget
from rpyc_explorer.icons import ConnectionState
from rpyc_explorer.machines.credentials import SERVICE_NAME
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.views.host_key_dialog import ChangedHostKeyDialog, HostKeyDialog
from rpyc_explorer.views.password_dialog import PasswordDialog
from rpyc_explorer.views.session_tabs import TabState

pytestmark = pytest.mark.ssh
CONNECT_TIMEOUT = 90


@pytest.fixture
def window(real_window):
    return real_window


def fingerprint_of(known_hosts: str) -> str:
    listing = subprocess.run(
        ["ssh-keygen", "-lf", known_hosts], capture_output=True, text=True, check=True
    ).stdout
    return listing.split()[1]


def key_machine(server) -> Machine:
    return Machine.new(
        "loopback key", host=server.host, port=server.port, user=server.user,
        auth="key", key_path=server.key_path,
    )  # fmt: skip


def password_machine(server) -> Machine:
    if server.password is None:
        pytest.skip("password login needs the tests to run as root")
    return Machine.new(
        "loopback password", host=server.host, port=server.port,
        user=server.user, auth="password",
    )  # fmt: skip


def test_window_ssh_host_key_accept_and_save(
    qtbot, arun, window, sshd_server, app_dirs
):
    machine = window.store.add(key_machine(sshd_server))

    async def scenario():
        task = window.connect_machine(machine.id)
        dialog = await wait_for_widget(visible_child(window, HostKeyDialog), timeout=60)
        assert dialog.fingerprint_label.text() == fingerprint_of(
            sshd_server.known_hosts
        )
        assert dialog.cancel_button.isDefault()
        dialog.accept_save_button.click()
        await task
        assert window.tabs.state(machine.id) is TabState.CONNECTED
        assert window.panel.state(machine.id) is ConnectionState.CONNECTED
        session = window.tabs.session(machine.id)
        await window.disconnect_machine(machine.id)
        return session

    session = arun(scenario(), timeout=CONNECT_TIMEOUT)
    assert session.is_closed
    assert session.cleanup_problems == []
    saved = (app_dirs["data"] / "known_hosts").read_text()
    assert saved.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 ")


def test_window_ssh_host_key_cancel_fails_tab(
    qtbot, arun, window, sshd_server, app_dirs
):
    machine = window.store.add(key_machine(sshd_server))

    async def scenario():
        task = window.connect_machine(machine.id)
        dialog = await wait_for_widget(visible_child(window, HostKeyDialog), timeout=60)
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
        await task

    arun(scenario(), timeout=CONNECT_TIMEOUT)
    assert window.tabs.state(machine.id) is TabState.FAILED
    assert window.tabs.progress_panel(machine.id).error_frame.isVisible()
    assert not (app_dirs["data"] / "known_hosts").exists()


def test_window_ssh_changed_key_then_forget(qtbot, arun, window, sshd_server, app_dirs):
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    old_line = public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    known_hosts = app_dirs["data"] / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd_server.port} {old_line}\n")
    machine = window.store.add(key_machine(sshd_server))

    async def scenario():
        task = window.connect_machine(machine.id)
        dialog = await wait_for_widget(
            visible_child(window, ChangedHostKeyDialog), timeout=60
        )
        await task
        assert window.tabs.state(machine.id) is TabState.FAILED
        message = window.tabs.progress_panel(machine.id).error_label.text()
        assert message.count("Forget host key") == 1
        labels = [b.text().lower() for b in dialog.buttons.buttons()]
        assert not any("accept" in label for label in labels)
        key_type, fingerprint = dialog.new_label.text().split()
        assert key_type == "ssh-ed25519"
        assert fingerprint == fingerprint_of(sshd_server.known_hosts)
        assert "SHA256:" in dialog.old_label.text()
        dialog.reject()

        window.panel.select_machine(machine.id)
        assert window.actions.forget_host_key.isEnabled()
        window.actions.forget_host_key.trigger()
        box = await wait_for_widget(visible_child(window, QMessageBox))
        box.button(QMessageBox.StandardButton.Yes).click()
        done = await wait_for_widget(
            lambda: next((b for b in window.findChildren(QMessageBox)
                          if b.isVisible() and "Removed" in b.text()), None)
        )  # fmt: skip
        assert "Removed 1" in done.text()
        done.button(QMessageBox.StandardButton.Ok).click()
        await window.wait_idle()

    arun(scenario(), timeout=CONNECT_TIMEOUT)
    assert old_line.split()[1] not in known_hosts.read_text()


def test_window_ssh_password_dialog(qtbot, arun, window, sshd_server, memory_keyring):
    machine = window.store.add(password_machine(sshd_server))

    async def scenario():
        task = window.connect_machine(machine.id)
        host_dialog = await wait_for_widget(
            visible_child(window, HostKeyDialog), timeout=60
        )
        host_dialog.accept_once_button.click()
        dialog = await wait_for_widget(
            visible_child(window, PasswordDialog), timeout=60
        )
        assert "password" in dialog.prompt_label.text().lower()
        assert not dialog.remember_box.isHidden()
        qtbot.keyClicks(dialog.secret_edit, sshd_server.password)
        dialog.remember_box.setChecked(True)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        await task
        assert window.tabs.state(machine.id) is TabState.CONNECTED
        await window.disconnect_machine(machine.id)

    arun(scenario(), timeout=CONNECT_TIMEOUT)
    stored = memory_keyring.entries.get((SERVICE_NAME, f"{machine.id}/password"))
    assert stored == sshd_server.password


@pytest.fixture
def keyringless_window(qtbot, app_dirs):
    """The real window whose credential store has keyring's fail backend."""
    import keyring.backends.fail
    from rpyc_explorer.app import create_window
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.known_hosts import KnownHosts
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.views import window_settings

    window = create_window(
        store=MachineStore(app_dirs["config"]),
        credentials=CredentialStore(backend=keyring.backends.fail.Keyring()),
        known_hosts=KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[]),
        settings=window_settings.open_settings(app_dirs["config"]),
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_window_ssh_password_without_keyring(
    qtbot, arun, keyringless_window, sshd_server
):
    window = keyringless_window
    machine = window.store.add(password_machine(sshd_server))

    async def connect_with_password(first: bool) -> tuple[str, bool, str]:
        task = window.connect_machine(machine.id)
        if first:
            host_dialog = await wait_for_widget(
                visible_child(window, HostKeyDialog), timeout=60
            )
            host_dialog.accept_save_button.click()
        dialog = await wait_for_widget(
            visible_child(window, PasswordDialog), timeout=60
        )
        notice = dialog.notice_label.text() if dialog.notice_label.isVisible() else ""
        remember_shown = not dialog.remember_box.isHidden()
        status = window.statusBar().currentMessage()
        qtbot.keyClicks(dialog.secret_edit, sshd_server.password)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        await task
        assert window.tabs.state(machine.id) is TabState.CONNECTED
        await window.disconnect_machine(machine.id)
        return notice, remember_shown, status

    async def scenario():
        return [await connect_with_password(first) for first in (True, False)]

    (notice, remember_shown, status), again = arun(
        scenario(), timeout=2 * CONNECT_TIMEOUT
    )
    assert notice.startswith("No system keyring is available")
    assert "asked for on every connection" in notice
    assert "gnome-keyring" in notice
    assert "keyring.backends" not in notice
    assert not remember_shown
    assert status == notice
    # The second connect prompts for the password again, without the notice.
    assert again[0] == ""
    assert not again[1]
    assert "cannot be remembered" not in again[2]


def test_window_ssh_rejected_stored_password(
    qtbot, arun, window, sshd_server, memory_keyring
):
    machine = window.store.add(password_machine(sshd_server))
    entry = (SERVICE_NAME, f"{machine.id}/password")
    memory_keyring.entries[entry] = "stale-password"

    async def scenario():
        task = window.connect_machine(machine.id)
        host_dialog = await wait_for_widget(
            visible_child(window, HostKeyDialog), timeout=60
        )
        host_dialog.accept_save_button.click()
        await task
        assert window.tabs.state(machine.id) is TabState.FAILED
        panel = window.tabs.progress_panel(machine.id)
        assert panel.forget_button.isVisible()
        assert "stale-password" not in panel.error_label.text()

        panel.forget_button.click()
        dialog = await wait_for_widget(
            visible_child(window, PasswordDialog), timeout=60
        )
        assert entry not in memory_keyring.entries
        qtbot.keyClicks(dialog.secret_edit, sshd_server.password)
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
        await wait_for_widget(
            lambda: window.tabs.state(machine.id) is TabState.CONNECTED, timeout=60
        )
        await window.disconnect_machine(machine.id)

    arun(scenario(), timeout=2 * CONNECT_TIMEOUT)
    assert entry not in memory_keyring.entries
