"""Prompts from the controller to the user, and how it reads the replies.

The window supplies two coroutine functions: one shows an unknown host key and
returns a `HostKeyDecision`, the other requests a password or passphrase and
returns a `SecretReply` (or any object with `secret` and `remember`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..machines.credentials import Secret
from ..machines.record import Machine


class HostKeyDecision(str, enum.Enum):
    """The user's decision on an unknown host key."""

    ACCEPT_AND_SAVE = "accept-and-save"
    ACCEPT_ONCE = "accept-once"
    CANCEL = "cancel"

    @classmethod
    def of(cls, value: Any) -> HostKeyDecision:
        """Read a decision from this enum, a str-valued enum or a plain string.

        Anything unrecognised counts as CANCEL, so no key is accepted by mistake.
        """
        raw = getattr(value, "value", value)
        try:
            return cls(raw)
        except ValueError:
            return cls.CANCEL


@dataclass(frozen=True)
class HostKeyPrompt:
    """An unknown host key to show the user.

    Attributes:
        machine: the machine being connected.
        host, port: the server whose key this is (the jump host's, if
            `is_jump_host`).
        key_type: e.g. "ssh-ed25519".
        fingerprint: "SHA256:..." as OpenSSH prints it.
        is_jump_host: the key belongs to the jump host, not the machine itself.
    """

    machine: Machine
    host: str
    port: int
    key_type: str
    fingerprint: str
    is_jump_host: bool = False


@dataclass(frozen=True)
class SecretPrompt:
    """A password or passphrase to ask for.

    Attributes:
        machine: the machine being connected.
        kind: "password" or "passphrase".
        prompt: OpenSSH's prompt text (names the user, host or key file).
        can_remember: show the "remember in keyring" choice.
        is_jump_host: the prompt is for the jump host.
    """

    machine: Machine
    kind: str
    prompt: str
    can_remember: bool
    is_jump_host: bool = False


@dataclass(frozen=True)
class SecretReply:
    """The user's reply to a secret prompt; `secret` None means cancelled."""

    secret: Secret | None
    remember: bool = False


def secret_of(reply: Any) -> tuple[Secret | None, bool]:
    """Read `(secret, remember)` from a SecretReply-like object or None."""
    if reply is None:
        return None, False
    value = getattr(reply, "secret", None)
    remember = bool(getattr(reply, "remember", False))
    if value is None:
        return None, False
    if isinstance(value, Secret):
        return value, remember
    if isinstance(value, str):
        return Secret(value), remember
    raise TypeError(
        f"a secret reply must hold a str or Secret, not {type(value).__name__}"
    )


AskHostKey = Callable[[HostKeyPrompt], Awaitable[Any]]
AskSecret = Callable[[SecretPrompt], Awaitable[Any]]
