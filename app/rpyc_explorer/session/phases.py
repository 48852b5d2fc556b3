"""Named connection phases and the errors that name the phase that failed."""

from __future__ import annotations

import enum

from ..machines.known_hosts import HostKeyChangedError


class Phase(str, enum.Enum):
    """One step of connecting to a machine, in order."""

    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    FINDING_PYTHON = "finding-python"
    UPLOADING = "uploading"
    STARTING = "starting"
    HANDSHAKE = "handshake"
    CONNECTED = "connected"

    @property
    def label(self) -> str:
        """The phase as the progress display shows it."""
        return _LABELS[self]

    @classmethod
    def from_engine(cls, name: str) -> Phase:
        """Map a DeployedServer phase name ("finding-python", ...) to a Phase."""
        try:
            return cls(name)
        except ValueError:
            return cls.STARTING


_LABELS = {
    Phase.CONNECTING: "Connecting",
    Phase.AUTHENTICATING: "Authenticating",
    Phase.FINDING_PYTHON: "Finding Python",
    Phase.UPLOADING: "Uploading the server",
    Phase.STARTING: "Starting the server",
    Phase.HANDSHAKE: "Handshake",
    Phase.CONNECTED: "Connected",
}


class SessionError(Exception):
    """Connecting to a machine failed.

    Attributes:
        machine_name: the machine's display name.
        phase: the phase that failed.
        reason: why, in one sentence (never contains a secret).
        hint: what to try next.
    """

    def __init__(
        self, machine_name: str, phase: Phase, reason: str, hint: str = ""
    ) -> None:
        self.machine_name = machine_name
        self.phase = phase
        self.reason = reason
        self.hint = hint
        text = f"{machine_name}: {phase.label.lower()} failed: {reason}"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class AuthenticationFailedError(SessionError):
    """The server rejected the credentials.

    Attributes:
        used_stored_secret: the rejected secret came from the keyring, so the UI
            may offer to forget it.
    """

    def __init__(
        self, machine_name: str, reason: str, hint: str, used_stored_secret: bool
    ) -> None:
        super().__init__(machine_name, Phase.AUTHENTICATING, reason, hint)
        self.used_stored_secret = used_stored_secret


class HostKeyRejectedError(SessionError):
    """The user cancelled at the unknown-host-key prompt, or ssh refused the key."""


class HostKeyChanged(SessionError):
    """The server's host key differs from the saved one; the connect stopped.

    Attributes:
        host, port: the server, as written in known_hosts.
        old_fingerprints: the saved keys, as "type SHA256:... (file)".
        new_fingerprint: the presented key, as "type SHA256:...".
    """

    def __init__(self, machine_name: str, error: HostKeyChangedError) -> None:
        self.host = error.host
        self.port = error.port
        self.old_fingerprints = [
            f"{k.key.key_type} {k.key.fingerprint} ({k.source})" for k in error.old
        ]
        self.new_fingerprint = f"{error.new.key_type} {error.new.fingerprint}"
        super().__init__(machine_name, Phase.CONNECTING, str(error))
