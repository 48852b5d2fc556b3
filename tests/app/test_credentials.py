"""CredentialStore against a real keyring and against the no-keyring backends.

The SecretService tests need the private D-Bus session with an unlocked
gnome-keyring that scripts/test.sh starts; outside it they are skipped.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys
import uuid

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.core
import pytest
from rpyc_explorer.machines.credentials import (
    SERVICE_NAME,
    CredentialStore,
    Secret,
    keyring_username,
)

SECRET_TEXT = "correct horse battery staple"


def _secret_service():
    try:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
        backend.priority  # noqa: B018 - raises when no unlocked SecretService exists
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no unlocked SecretService on this bus: {exc}")
    return backend


@pytest.fixture
def secret_service():
    backend = _secret_service()
    machine_id = uuid.uuid4().hex
    yield backend, machine_id
    for kind in ("password", "passphrase"):
        try:
            backend.delete_password(SERVICE_NAME, keyring_username(machine_id, kind))
        except keyring.errors.PasswordDeleteError:
            pass


def test_secret_is_redacted():
    secret = Secret(SECRET_TEXT)
    percent = "%s" % secret  # noqa: UP031 - %-formatting is one of the cases
    texts = [repr(secret), str(secret), f"{secret}", percent, repr([secret])]
    for text in texts:
        assert SECRET_TEXT not in text
    assert secret.reveal() == SECRET_TEXT
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_secret_service_round_trip(secret_service):
    backend, machine_id = secret_service
    store = CredentialStore(backend)
    assert store.available
    assert store.take_notice() == ""

    assert store.set(machine_id, "password", Secret(SECRET_TEXT))
    assert store.get(machine_id, "password") == Secret(SECRET_TEXT)
    assert store.get(machine_id, "passphrase") is None
    stored = backend.get_password(SERVICE_NAME, f"{machine_id}/password")
    assert stored == SECRET_TEXT

    assert store.forget(machine_id, "password")
    assert store.get(machine_id, "password") is None
    assert not store.forget(machine_id, "password")


def test_policy_forbids_storing(secret_service):
    backend, machine_id = secret_service
    backend.set_password(SERVICE_NAME, f"{machine_id}/password", SECRET_TEXT)
    store = CredentialStore(backend, allow_storing=False)
    assert not store.available
    assert store.get(machine_id, "password") is None
    assert not store.set(machine_id, "passphrase", Secret(SECRET_TEXT))
    assert "site policy" in store.take_notice()


def test_fail_backend_means_no_keyring(tmp_path, monkeypatch, app_dirs):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        store = CredentialStore()
        assert not store.available
        assert not store.set("m1", "password", Secret(SECRET_TEXT))
        assert store.get("m1", "password") is None
        notice = store.take_notice()
        assert "no system keyring" in notice
        assert "asked for them on every connection" in notice
        assert store.take_notice() == ""
    finally:
        keyring.set_keyring(previous)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_null_backend_rejected():
    store = CredentialStore(keyring.backends.null.Keyring())
    assert not store.available
    assert "null" in store.unavailable_reason


def test_plaintext_backend_rejected():
    # keyrings.alt is not installed here, so a class that claims its module stands
    # in for keyrings.alt.file.PlaintextKeyring.
    plaintext = type("PlaintextKeyring", (keyring.backend.KeyringBackend,), {
        "__module__": "keyrings.alt.file",
        "priority": 0.5,
        "get_password": lambda self, s, u: None,
        "set_password": lambda self, s, u, p: None,
        "delete_password": lambda self, s, u: None,
    })()  # fmt: skip
    store = CredentialStore(plaintext)
    assert not store.available
    assert "stores secrets in a file" in store.unavailable_reason


class _BrokenKeyring(keyring.backend.KeyringBackend):
    """A backend that fails like a locked or vanished SecretService."""

    priority = 1

    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked("collection is locked")

    def set_password(self, service, username, password):
        raise keyring.errors.PasswordSetError("D-Bus call failed")

    def delete_password(self, service, username):
        raise keyring.errors.PasswordDeleteError("not found")


def test_backend_error_disables_keyring():
    store = CredentialStore(_BrokenKeyring())
    assert store.available
    assert not store.set("m1", "password", Secret(SECRET_TEXT))
    assert not store.available
    notice = store.take_notice()
    assert "D-Bus call failed" in notice
    assert SECRET_TEXT not in notice
    assert store.get("m1", "password") is None


def test_username_rejects_unknown_kind():
    assert keyring_username("abc", "password") == "abc/password"
    with pytest.raises(ValueError, match="'token' is invalid"):
        keyring_username("abc", "token")


_SECRET_SERVICE = "keyring.backends.SecretService.Keyring"


def _unreachable_bus(tmp_path) -> dict[str, str]:
    """Environment naming SecretService on a D-Bus socket that does not exist."""
    return {
        "PYTHON_KEYRING_BACKEND": _SECRET_SERVICE,
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus-socket'}",
    }


def test_backend_that_cannot_start(tmp_path, monkeypatch, caplog):
    for name, value in _unreachable_bus(tmp_path).items():
        monkeypatch.setenv(name, value)
    # Make keyring load the backend again from the environment; monkeypatch
    # restores the backend the process had before.
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    caplog.set_level(logging.WARNING, "rpyc_explorer.machines.credentials")

    store = CredentialStore()

    assert not store.available
    assert _SECRET_SERVICE in store.unavailable_reason
    assert store.get("m1", "password") is None
    assert not store.set("m1", "password", Secret(SECRET_TEXT))
    warnings = [r.getMessage() for r in caplog.records]
    assert any(_SECRET_SERVICE in line and "cannot start" in line for line in warnings)
    assert "asked for them on every connection" in store.take_notice()


@pytest.mark.gui
def test_smoke_without_startable_backend(tmp_path):
    launcher = shutil.which("rpyc-explorer")
    argv = [launcher] if launcher else [sys.executable, "-m", "rpyc_explorer"]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **_unreachable_bus(tmp_path))
    result = subprocess.run(
        [*argv, "--smoke"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("smoke: ok")
    assert _SECRET_SERVICE in result.stderr
