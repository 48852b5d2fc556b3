"""Passwords and key passphrases, kept only in the OS keyring.

Entries use the service name "rpyc-explorer" and the user name
`<machine id>/<kind>`, so renaming a machine keeps its secrets. When no usable
keyring exists (keyring's fail or null backends, a plaintext backend from
keyrings.alt, or a backend that raises), `CredentialStore.available` is False, the
reason is reported once, and every secret is asked for each time. There is no
fallback that writes a secret to a file.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

import keyring
import keyring.backend
import keyring.errors

logger = logging.getLogger(__name__)

SERVICE_NAME = "rpyc-explorer"
CredentialKind = Literal["password", "passphrase"]
CREDENTIAL_KINDS: tuple[str, ...] = ("password", "passphrase")

# Backends that store nothing or store secrets in a readable file.
_REJECTED_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")
_REDACTED = "********"


class Secret:
    """A secret string whose repr and str are redacted.

    Call `reveal()` only at the point where the secret leaves the process (the
    askpass socket reply, the keyring call).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret needs a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """Return the secret text."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_REDACTED!r})"

    def __str__(self) -> str:
        return _REDACTED

    def __format__(self, spec: str) -> str:
        return _REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def keyring_username(machine_id: str, kind: str) -> str:
    """Return the keyring user name for one credential of one machine."""
    if kind not in CREDENTIAL_KINDS:
        raise ValueError(
            f"credential kind {kind!r} is invalid; expected {CREDENTIAL_KINDS}"
        )
    return f"{machine_id}/{kind}"


def usable_backend(backend: keyring.backend.KeyringBackend) -> tuple[Any, str]:
    """Pick a backend that really stores secrets safely.

    Returns:
        `(backend, "")` when usable, else `(None, reason)`. A chainer backend is
        reduced to its highest-priority acceptable member.
    """
    members = getattr(backend, "backends", None)
    if members is not None:
        accepted = [b for b in members if not _rejection(b)]
        if accepted:
            return max(accepted, key=lambda b: getattr(b, "priority", 0)), ""
        reasons = "; ".join(_rejection(b) for b in members) or "it has no backends"
        return None, f"the keyring chain has no safe backend ({reasons})"
    reason = _rejection(backend)
    return (None, reason) if reason else (backend, "")


def _rejection(backend: object) -> str:
    module = type(backend).__module__
    name = f"{module}.{type(backend).__name__}"
    if module.startswith(_REJECTED_MODULES):
        if module.startswith("keyrings.alt"):
            return f"{name} stores secrets in a file, which this program does not use"
        return f"no system keyring is available ({name})"
    return ""


def _default_backend() -> tuple[Any, str]:
    """Return `(keyring.get_keyring(), "")`, or `(None, reason)` when it fails.

    keyring loads the backend named by PYTHON_KEYRING_BACKEND (or its
    configuration file) on first use, and a backend that cannot start there
    (SecretService without a D-Bus session, for one) raises from `get_keyring`.
    """
    try:
        return keyring.get_keyring(), ""
    except Exception as exc:  # noqa: BLE001 - backends raise assorted errors
        named = os.environ.get("PYTHON_KEYRING_BACKEND", "")
        which = f"the keyring backend {named}" if named else "the keyring backend"
        return None, f"{which} cannot start: {type(exc).__name__}: {exc}"


class CredentialStore:
    """Reads and writes machine credentials in the OS keyring.

    Args:
        backend: the keyring backend; defaults to `keyring.get_keyring()`.
        allow_storing: False when the site policy forbids remembering secrets;
            stored secrets are then neither read nor written.
    """

    def __init__(self, backend: Any = None, allow_storing: bool = True) -> None:
        self.allow_storing = allow_storing
        reason = ""
        if backend is None:
            backend, reason = _default_backend()
        self._backend = None
        if backend is not None:
            self._backend, reason = usable_backend(backend)
        self._reason = reason
        self._notice_taken = False
        if reason:
            logger.warning(
                "credentials: %s; secrets will be asked for every time", reason
            )

    @property
    def available(self) -> bool:
        """True when secrets can be remembered."""
        return self._backend is not None and self.allow_storing

    @property
    def unavailable_reason(self) -> str:
        """Why secrets cannot be remembered, or "" when they can."""
        if not self.allow_storing:
            return "the site policy does not allow remembering passwords"
        return self._reason

    def take_notice(self) -> str:
        """Return the "no keyring" message the first time, then "".

        The window shows it once per run instead of on every prompt.
        """
        if self._notice_taken or not self.unavailable_reason:
            return ""
        self._notice_taken = True
        return (
            f"Passwords cannot be remembered: {self.unavailable_reason}. "
            "You will be asked for them on every connection."
        )

    def get(self, machine_id: str, kind: CredentialKind) -> Secret | None:
        """Return the stored secret, or None when there is none or no keyring."""
        if not self.available:
            return None
        username = keyring_username(machine_id, kind)
        try:
            value = self._backend.get_password(SERVICE_NAME, username)
        except Exception as exc:  # noqa: BLE001 - any backend failure disables it
            self._disable("reading", username, exc)
            return None
        return Secret(value) if value is not None else None

    def set(self, machine_id: str, kind: CredentialKind, secret: Secret) -> bool:
        """Store `secret`; return False when it could not be stored."""
        if not isinstance(secret, Secret):
            raise TypeError("CredentialStore.set needs a Secret")
        if not self.available:
            return False
        username = keyring_username(machine_id, kind)
        try:
            self._backend.set_password(SERVICE_NAME, username, secret.reveal())
        except Exception as exc:  # noqa: BLE001 - any backend failure disables it
            self._disable("storing", username, exc)
            return False
        logger.info("credentials: stored the %s of machine %s", kind, machine_id)
        return True

    def forget(self, machine_id: str, kind: CredentialKind) -> bool:
        """Delete one stored secret; return True when one was deleted."""
        if self._backend is None:
            return False
        username = keyring_username(machine_id, kind)
        try:
            self._backend.delete_password(SERVICE_NAME, username)
        except keyring.errors.PasswordDeleteError:
            return False
        except Exception as exc:  # noqa: BLE001 - any backend failure disables it
            self._disable("deleting", username, exc)
            return False
        logger.info("credentials: forgot the %s of machine %s", kind, machine_id)
        return True

    def forget_all(self, machine_id: str) -> None:
        """Delete every secret stored for a machine (used when it is removed)."""
        for kind in CREDENTIAL_KINDS:
            self.forget(machine_id, kind)  # type: ignore[arg-type]

    def _disable(self, action: str, username: str, exc: Exception) -> None:
        # The exception text comes from the backend (D-Bus errors and the like) and
        # never contains the secret, which is only passed as an argument.
        self._reason = (
            f"the keyring failed while {action} {username}: {type(exc).__name__}: {exc}"
        )
        self._backend = None
        self._notice_taken = False
        logger.warning(
            "credentials: %s; secrets will be asked for every time", self._reason
        )
