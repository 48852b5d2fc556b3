"""Connects a machine through the session layer and shows its prompts as dialogs.

The session layer sends two kinds of prompt while it connects: whether to trust an
unknown SSH host key, and a request for a password or passphrase. They arrive as
awaitable callbacks. This module opens the matching dialog window-modal over the
main window and returns the user's reply without a nested event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtWidgets import QWidget

from rpyc_explorer.machines.credentials import CredentialStore
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.session.controller import SessionController
from rpyc_explorer.session.phases import HostKeyChanged, SessionError
from rpyc_explorer.session.prompts import HostKeyPrompt, SecretPrompt
from rpyc_explorer.views.async_dialog import run_dialog
from rpyc_explorer.views.host_key_dialog import (
    ChangedHostKeyDialog,
    HostKeyChoice,
    HostKeyDialog,
)
from rpyc_explorer.views.machine_commands import keyring_notice
from rpyc_explorer.views.password_dialog import PasswordDialog, SecretAnswer
from rpyc_explorer.views.session_tabs import ConnectFailed, ConnectReporter

log = logging.getLogger(__name__)

# How long a cancelled connect may take to tear down before the tab closes anyway.
CANCEL_WAIT = 25.0
# How long a notice stays in the status bar.
NOTICE_MILLISECONDS = 30_000
# The hint does not repeat the message's advice on removing the old key.
_CHANGED_KEY_HINT = (
    "Do not connect again before the host's administrator has confirmed the new "
    "fingerprint."
)


async def ask_host_key(
    parent: QWidget | None, host: str, port: int, key_type: str, fingerprint: str
) -> HostKeyChoice:
    """Ask whether to trust an unknown host key; Cancel unless the user accepts."""
    dialog = HostKeyDialog(host, port, key_type, fingerprint, parent)
    await run_dialog(dialog)
    return dialog.choice


async def show_changed_host_key(
    parent: QWidget | None,
    host: str,
    port: int,
    key_type: str,
    old_fingerprint: str,
    new_fingerprint: str,
) -> None:
    """Explain that a host key changed; the connection is not continued."""
    dialog = ChangedHostKeyDialog(
        host, port, key_type, old_fingerprint, new_fingerprint, parent
    )
    await run_dialog(dialog)


async def ask_secret(
    parent: QWidget | None,
    machine: Machine,
    prompt: str,
    kind: str,
    can_remember: bool,
    notice: str = "",
) -> SecretAnswer:
    """Ask for a password or passphrase for `machine`, showing `notice` if given."""
    secret_name = "Passphrase" if kind == "passphrase" else "Password"
    dialog = PasswordDialog(
        f"{secret_name} for {machine.name}", prompt, can_remember, parent, notice
    )
    await run_dialog(dialog)
    return dialog.answer()


class SessionConnector:
    """Drives the `SessionController` for the window's tabs.

    Args:
        credentials: keyring access for remembered secrets.
        known_hosts: the SSH known-hosts files.
        parent: the window that owns the dialogs (set after the window exists).
    """

    def __init__(
        self,
        credentials: CredentialStore,
        known_hosts: KnownHosts,
        parent: QWidget | None = None,
    ) -> None:
        self.parent = parent
        self.controller = SessionController(
            credentials, known_hosts, self._ask_host_key, self._ask_secret
        )
        self.controller.phase_changed.connect(self._on_phase)
        self._reporters: dict[str, ConnectReporter] = {}
        self._dialogs: set[asyncio.Task] = set()

    async def connect(self, machine: Machine, reporter: ConnectReporter) -> Any:
        """Connect `machine` and return its RemoteSession.

        Raises:
            ConnectFailed: connecting failed; names the phase, the reason and what
                to try.
            asyncio.CancelledError: the tab cancelled; returns after the controller
                tore the attempt down (bounded by CANCEL_WAIT).
        """
        self._reporters[machine.id] = reporter
        try:
            return await self.controller.connect(machine)
        except asyncio.CancelledError:
            await self._cancel(machine.id)
            raise
        except HostKeyChanged as exc:
            self._show_changed_key(exc)
            raise ConnectFailed(exc.reason, "connecting", _CHANGED_KEY_HINT) from exc
        except SessionError as exc:
            rejected = bool(getattr(exc, "used_stored_secret", False))
            raise ConnectFailed(
                exc.reason, exc.phase.value, exc.hint, rejected
            ) from exc
        finally:
            self._reporters.pop(machine.id, None)

    async def _cancel(self, machine_id: str) -> None:
        # The controller shields its task from our cancel, so it is cancelled
        # explicitly; waiting here means "cancelled" also means "cleaned up".
        self.controller.cancel(machine_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT
        while self.controller.is_connecting(machine_id) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.controller.is_connecting(machine_id):
            log.error(
                "connector: cancelling %s did not finish within %.0f s",
                machine_id,
                CANCEL_WAIT,
            )

    async def close_all(self) -> list[str]:
        """Close what the controller still holds; return cleanup problems."""
        problems = await self.controller.close_all()
        return [
            f"{machine_id}: {text}"
            for machine_id, items in problems.items()
            for text in items
        ]

    def _on_phase(
        self, machine_id: str, phase: str, fraction: float, detail: str
    ) -> None:
        reporter = self._reporters.get(machine_id)
        if reporter is None:
            return
        reporter.phase(phase, detail)
        reporter.progress(None if fraction < 0 else fraction)

    async def _ask_host_key(self, prompt: HostKeyPrompt) -> HostKeyChoice:
        host = f"{prompt.host} (jump host)" if prompt.is_jump_host else prompt.host
        return await ask_host_key(
            self.parent, host, prompt.port, prompt.key_type, prompt.fingerprint
        )

    async def _ask_secret(self, prompt: SecretPrompt) -> SecretAnswer:
        # The "cannot be remembered" notice comes once per run (the machine dialog
        # may have taken it already); later prompts only hide the remember box.
        notice = ""
        if self.controller.keyring_notice():
            notice = keyring_notice(self.controller.credentials)
            status_bar = getattr(self.parent, "statusBar", None)
            if status_bar is not None:
                status_bar().showMessage(notice, NOTICE_MILLISECONDS)
        return await ask_secret(
            self.parent,
            prompt.machine,
            prompt.prompt,
            prompt.kind,
            prompt.can_remember,
            notice,
        )

    def _show_changed_key(self, exc: HostKeyChanged) -> None:
        key_type, _, new = exc.new_fingerprint.partition(" ")
        old = "\n".join(exc.old_fingerprints) or "(none)"
        task = asyncio.ensure_future(
            show_changed_host_key(self.parent, exc.host, exc.port, key_type, old, new)
        )
        self._dialogs.add(task)
        task.add_done_callback(self._dialogs.discard)
