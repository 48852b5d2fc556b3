"""Host-key fetch and comparison against the throwaway sshd."""

# ruff: noqa: F811 - the tests take the imported sshd_server fixture as a parameter

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rpyc_explorer.machines.known_hosts import (  # noqa: E402
    HostKey,
    HostKeyChangedError,
    HostKeyFetchError,
    HostKeyStatus,
    KnownHosts,
    fetch_host_key,
    known_hosts_name,
)
from sshd import sshd_server  # noqa: E402, F401 - session-scoped fixture

pytestmark = pytest.mark.ssh


def _pinned_key(server) -> HostKey:
    _name, key_type, blob = Path(server.known_hosts).read_text().split()[:3]
    return HostKey(key_type, blob)


def _other_key() -> HostKey:
    """A fresh ed25519 public key that no server has."""
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    key_type, blob = public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()
    return HostKey(key_type.decode(), blob.decode())


@pytest.fixture
def known(tmp_path) -> KnownHosts:
    return KnownHosts(tmp_path / "app_known_hosts", read_only_files=[])


def test_fetch_matches_pinned_key(sshd_server):
    key = fetch_host_key(sshd_server.host, sshd_server.port)
    assert key == _pinned_key(sshd_server)
    listing = subprocess.run(
        ["ssh-keygen", "-lf", sshd_server.known_hosts],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert key.fingerprint == listing.split()[1]
    assert key.fingerprint.startswith("SHA256:")
    assert not key.fingerprint.endswith("=")


def test_fetch_from_closed_port_fails():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(HostKeyFetchError, match=f"cannot connect to 127.0.0.1:{port}"):
        fetch_host_key("127.0.0.1", port, timeout=5)


def test_unknown_then_saved_then_known(sshd_server, known):
    key = fetch_host_key(sshd_server.host, sshd_server.port)
    check = known.check(sshd_server.host, sshd_server.port, key)
    assert check.status is HostKeyStatus.UNKNOWN

    known.save(sshd_server.host, sshd_server.port, key)
    line = known.app_file.read_text()
    assert line.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 ")
    assert (
        known.check(sshd_server.host, sshd_server.port, key).status
        is HostKeyStatus.KNOWN
    )


def test_changed_key_detected(sshd_server, known):
    key = fetch_host_key(sshd_server.host, sshd_server.port)
    old = _other_key()
    known.save(sshd_server.host, sshd_server.port, old)

    check = known.check(sshd_server.host, sshd_server.port, key)
    assert check.status is HostKeyStatus.CHANGED
    error = HostKeyChangedError(sshd_server.host, sshd_server.port, key, check.known)
    text = str(error)
    assert "CHANGED" in text
    assert "man-in-the-middle" in text
    assert old.fingerprint in text
    assert key.fingerprint in text
    assert "Forget host key" in text


def test_hashed_read_only_entry_is_known(sshd_server, tmp_path):
    hashed = tmp_path / "user_known_hosts"
    shutil.copy(sshd_server.known_hosts, hashed)
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True,
                   capture_output=True)  # fmt: skip
    assert hashed.read_text().startswith("|1|")
    known = KnownHosts(tmp_path / "app_known_hosts", read_only_files=[hashed])
    key = fetch_host_key(sshd_server.host, sshd_server.port)

    check = known.check(sshd_server.host, sshd_server.port, key)
    assert check.status is HostKeyStatus.KNOWN
    assert check.known[0].source == hashed
    assert not check.known[0].in_app_file


def test_forget_removes_only_app_entries(sshd_server, tmp_path):
    hashed = tmp_path / "user_known_hosts"
    shutil.copy(sshd_server.known_hosts, hashed)
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True,
                   capture_output=True)  # fmt: skip
    before = hashed.read_bytes()
    known = KnownHosts(tmp_path / "app_known_hosts", read_only_files=[hashed])
    other = _other_key()
    known.save("other.example", 22, other)
    known.save(sshd_server.host, sshd_server.port, _other_key())

    result = known.forget(sshd_server.host, sshd_server.port)

    assert result.removed == 1
    assert result.still_listed_in == (hashed,)
    assert hashed.read_bytes() == before
    assert known.app_file.read_text() == f"other.example ssh-ed25519 {other.blob}\n"


def test_known_hosts_name_forms():
    assert known_hosts_name("h", 22) == "h"
    assert known_hosts_name("h", 2222) == "[h]:2222"
