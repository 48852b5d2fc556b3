"""Commands on the machine list: add, edit, clone, delete, import, forget host key.

Each command is a coroutine that opens its dialogs without a nested event loop
(see `async_dialog.run_dialog`) and writes through the `MachineStore`. Secrets typed
in the machine dialog go to the keyring through the `CredentialStore`, never to the
store file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from rpyc_explorer.machines.credentials import CredentialStore, Secret
from rpyc_explorer.machines.known_hosts import KnownHosts, known_hosts_name
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.machines.ssh_config import (
    SshConfigError,
    default_path,
    read_ssh_config,
)
from rpyc_explorer.machines.store import MachineStore, MachineStoreError
from rpyc_explorer.views.async_dialog import run_dialog
from rpyc_explorer.views.machine_dialog import MachineDialog
from rpyc_explorer.views.ssh_import_dialog import SshImportDialog

log = logging.getLogger(__name__)


def secret_kind(machine: Machine) -> str:
    """Return the credential kind a machine uses: "password" or "passphrase"."""
    return "passphrase" if machine.auth == "key" else "password"


def message_box(
    parent: QWidget,
    icon: QMessageBox.Icon,
    title: str,
    text: str,
    buttons: QMessageBox.StandardButton = QMessageBox.StandardButton.Ok,
    default: QMessageBox.StandardButton = QMessageBox.StandardButton.NoButton,
) -> QMessageBox:
    """Build a message box for `run_dialog` (QMessageBox's static helpers block)."""
    box = QMessageBox(icon, title, text, buttons, parent)
    if default != QMessageBox.StandardButton.NoButton:
        box.setDefaultButton(default)
    return box


def keyring_notice(credentials: CredentialStore) -> str:
    """Say that secrets are not remembered, and how to change that."""
    if not credentials.allow_storing:
        return (
            "The site policy does not allow remembering passwords, so you are "
            "asked for them on every connection."
        )
    return (
        "No system keyring is available, so passwords and passphrases are asked for "
        "on every connection. To remember them, install and unlock a keyring: on "
        "Debian or Ubuntu, gnome-keyring (GNOME) or KWallet (KDE)."
    )


async def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    """Ask a question with No as the default button; return True for Yes."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    box = message_box(
        parent,
        QMessageBox.Icon.Question,
        title,
        text,
        buttons,
        QMessageBox.StandardButton.No,
    )
    await run_dialog(box)
    return box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)


async def inform(
    parent: QWidget,
    title: str,
    text: str,
    icon: QMessageBox.Icon = QMessageBox.Icon.Information,
) -> None:
    """Show a message and wait until it is closed."""
    await run_dialog(message_box(parent, icon, title, text))


class MachineCommands:
    """Runs the machine-list commands for the main window.

    Args:
        parent: the window that owns the dialogs.
        store: the machine list.
        credentials: the keyring access, or None when the caller has none.
        known_hosts: the SSH known-hosts files.
    """

    def __init__(
        self,
        parent: QWidget,
        store: MachineStore,
        credentials: CredentialStore | None,
        known_hosts: KnownHosts,
    ) -> None:
        self.parent = parent
        self.store = store
        self.credentials = credentials
        self.known_hosts = known_hosts
        self.dialog: MachineDialog | SshImportDialog | None = None

    # -- add, edit, clone -------------------------------------------------------------

    def _make_dialog(self, machine: Machine | None) -> MachineDialog:
        credentials = self.credentials
        can_remember = credentials is not None and credentials.available
        keyring_missing = credentials is None or (
            credentials.allow_storing and not credentials.available
        )
        dialog = MachineDialog(
            machine, self.store.groups(), can_remember, keyring_missing, self.parent
        )
        if machine is not None and can_remember:
            remembered = credentials.get(machine.id, secret_kind(machine)) is not None
            dialog.set_remembered(remembered)
        return dialog

    async def _notify_no_keyring(self) -> None:
        if self.credentials is not None and self.credentials.take_notice():
            notice = keyring_notice(self.credentials)
            await inform(self.parent, "Passwords are not remembered", notice)

    async def add(self) -> Machine | None:
        """Ask for a new machine and save it; return it, or None when cancelled."""
        await self._notify_no_keyring()
        dialog = self.dialog = self._make_dialog(None)
        try:
            if not await run_dialog(dialog):
                return None
            machine = self._save(dialog, self.store.add)
        finally:
            self.dialog = None
        return machine

    async def edit(self, machine_id: str) -> Machine | None:
        """Edit a user machine and save it; managed and built-in ones are refused."""
        machine = self.store.get(machine_id)
        if not machine.editable:
            origin = "built in" if machine.is_builtin else "managed by your site"
            await inform(
                self.parent,
                "Machine cannot be edited",
                f"{machine.name} is {origin}. Use Clone to get a copy you can edit.",
            )
            return None
        await self._notify_no_keyring()
        dialog = self.dialog = self._make_dialog(machine)
        try:
            if not await run_dialog(dialog):
                return None
            return self._save(dialog, self.store.update)
        finally:
            self.dialog = None

    def _save(self, dialog: MachineDialog, write) -> Machine | None:
        try:
            machine = write(dialog.machine())
        except (MachineStoreError, OSError) as exc:
            log.error("machines: saving failed: %s", exc)
            box = message_box(
                self.parent,
                QMessageBox.Icon.Critical,
                "Saving failed",
                f"The machine was not saved: {exc}",
            )
            box.open()
            return None
        self._store_secret(machine, dialog)
        log.info("machines: saved %s (%s)", machine.name, machine.target)
        return machine

    def _store_secret(self, machine: Machine, dialog: MachineDialog) -> None:
        if self.credentials is None or not self.credentials.available:
            return
        answer = dialog.secret_answer()
        kind = secret_kind(machine)
        if answer.secret:
            self.credentials.set(machine.id, kind, Secret(answer.secret))
        elif not answer.remember and machine.kind == "ssh":
            self.credentials.forget(machine.id, kind)

    async def clone(self, machine_id: str) -> Machine | None:
        """Copy a machine (managed ones too) as a new editable machine."""
        try:
            copy = self.store.clone(machine_id)
        except (MachineStoreError, OSError) as exc:
            await inform(
                self.parent, "Clone failed", str(exc), QMessageBox.Icon.Critical
            )
            return None
        log.info("machines: cloned %s as %s", machine_id, copy.name)
        return copy

    # -- delete ------------------------------------------------------------------------

    async def delete(self, machine_id: str) -> bool:
        """Ask for confirmation, then remove a user machine and its saved secrets."""
        machine = self.store.get(machine_id)
        if not machine.editable:
            await inform(
                self.parent,
                "Machine cannot be deleted",
                f"{machine.name} is built in or managed by your site.",
            )
            return False
        confirmed = await ask_yes_no(
            self.parent,
            "Delete machine",
            f"Delete the machine {machine.name} ({machine.target})? Its saved "
            "password or passphrase is removed from the keyring as well.",
        )
        if not confirmed:
            return False
        try:
            self.store.remove(machine_id)
        except (MachineStoreError, OSError) as exc:
            await inform(
                self.parent, "Delete failed", str(exc), QMessageBox.Icon.Critical
            )
            return False
        if self.credentials is not None:
            self.credentials.forget_all(machine_id)
        log.info("machines: deleted %s", machine.name)
        return True

    # -- import ------------------------------------------------------------------------

    async def import_ssh(self, path: Path | None = None) -> list[Machine]:
        """Offer the hosts of an OpenSSH config file and add the checked ones."""
        source = path or default_path()
        try:
            candidates = read_ssh_config(source)
        except SshConfigError as exc:
            await inform(
                self.parent, "Import failed", str(exc), QMessageBox.Icon.Warning
            )
            return []
        existing = {m.name for m in self.store.machines()}
        dialog = self.dialog = SshImportDialog(
            candidates, existing, str(source), self.parent
        )
        try:
            if not await run_dialog(dialog):
                return []
            added = []
            for machine in dialog.selected():
                try:
                    added.append(self.store.add(machine))
                except (MachineStoreError, OSError) as exc:
                    log.error("machines: importing %s failed: %s", machine.name, exc)
            log.info("machines: imported %d hosts from %s", len(added), source)
            return added
        finally:
            self.dialog = None

    async def forget_password(self, machine_id: str) -> bool:
        """Confirm, then remove the machine's remembered password or passphrase."""
        machine = self.store.get(machine_id)
        kind = secret_kind(machine)
        if self.credentials is None:
            return False
        confirmed = await ask_yes_no(
            self.parent,
            f"Forget saved {kind}",
            f"Remove the {kind} of {machine.name} from the keyring? You will be "
            "asked for it on the next connection.",
        )
        if not confirmed:
            return False
        removed = self.credentials.forget(machine_id, kind)  # type: ignore[arg-type]
        text = (
            f"The {kind} of {machine.name} was removed from the keyring."
            if removed
            else f"No {kind} of {machine.name} was saved in the keyring."
        )
        await inform(self.parent, f"Forget saved {kind}", text)
        return removed

    # -- host keys ---------------------------------------------------------------------

    async def forget_host_key(self, machine_id: str) -> int:
        """Confirm, then remove the machine's host keys from the application's file."""
        machine = self.store.get(machine_id)
        name = known_hosts_name(machine.host, machine.effective_port)
        confirmed = await ask_yes_no(
            self.parent,
            "Forget host key",
            f"Remove the saved host key of {name}? The next connection will show the "
            "key offered then and ask whether to trust it. Do this only after you "
            "checked the new key with the host's administrator.",
        )
        if not confirmed:
            return 0
        result = self.known_hosts.forget(machine.host, machine.effective_port)
        text = f"Removed {result.removed} saved key(s) of {name}."
        if result.still_listed_in:
            files = ", ".join(str(p) for p in result.still_listed_in)
            text += (
                f" The host is still listed in {files}, which this program "
                f"never changes; remove it there with: ssh-keygen -R '{name}'"
            )
        await inform(self.parent, "Host key forgotten", text)
        return result.removed
