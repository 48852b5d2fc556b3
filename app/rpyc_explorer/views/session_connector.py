"""Connects a machine through the session layer and answers its questions with dialogs.

The session layer asks two kinds of questions while it connects: whether to trust an
unknown SSH host key, and a password or passphrase. They arrive as awaitable
callbacks; this module opens the matching dialog window-modal over the main window
and returns the answer without a nested event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtWidgets import QWidget

from rpyc_explorer.machines.credentials import CredentialStore
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.views.async_dialog import run_dialog
from rpyc_explorer.views.host_key_dialog import (
    ChangedHostKeyDialog,
    HostKeyChoice,
    HostKeyDialog,
)
from rpyc_explorer.views.password_dialog import PasswordDialog, SecretAnswer
from rpyc_explorer.views.session_tabs import ConnectFailed, ConnectReporter

log = logging.getLogger(__name__)


async def ask_host_key(parent: QWidget | None, host: str, port: int, key_type: str,
                       fingerprint: str) -> HostKeyChoice:
    """Ask whether to trust an unknown host key; Cancel unless the user accepts."""
    dialog = HostKeyDialog(host, port, key_type, fingerprint, parent)
    await run_dialog(dialog)
    return dialog.choice


async def show_changed_host_key(parent: QWidget | None, host: str, port: int,
                                key_type: str, old_fingerprint: str,
                                new_fingerprint: str) -> None:
    """Explain that a host key changed; the connection is not continued."""
    dialog = ChangedHostKeyDialog(host, port, key_type, old_fingerprint,
                                  new_fingerprint, parent)
    await run_dialog(dialog)


async def ask_secret(parent: QWidget | None, machine: Machine, prompt: str, kind: str,
                     can_remember: bool) -> SecretAnswer:
    """Ask for a password or passphrase for `machine`."""
    what = "Passphrase" if kind == "passphrase" else "Password"
    dialog = PasswordDialog(f"{what} for {machine.name}", prompt, can_remember, parent)
    await run_dialog(dialog)
    return dialog.answer()


class SessionConnector:
    """The window's connector: runs the session controller for one machine at a time.

    Args:
        credentials: keyring access for remembered secrets.
        known_hosts: the SSH known-hosts files.
        parent: the window that owns the dialogs (set after the window exists).
    """

    def __init__(self, credentials: CredentialStore, known_hosts: KnownHosts,
                 parent: QWidget | None = None) -> None:
        self.credentials = credentials
        self.known_hosts = known_hosts
        self.parent = parent

    async def connect(self, machine: Machine, reporter: ConnectReporter) -> Any:
        """Connect `machine` and return its RemoteSession.

        Raises:
            ConnectFailed: connecting failed in a known phase.
        """
        # NOTE: the session controller is not in the repository yet; until it is,
        # every connection fails here with a clear message.
        raise ConnectFailed(
            "the session controller (rpyc_explorer.session) cannot connect machines "
            "yet in this build",
            "connecting",
            "Update to a build that includes the session controller.",
        )
