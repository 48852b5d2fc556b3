"""Importing machines from a real OpenSSH client configuration file."""

from __future__ import annotations

import pytest
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.machines.ssh_config import (
    SshConfigError,
    new_machines,
    read_ssh_config,
)

CONFIG = """\
# A hand-written config with the usual shapes.
Host web
    HostName web.example.org
    User deploy
    Port 2202
    IdentityFile ~/.ssh/id_web

Host db db-replica
    HostName 10.1.2.3
    ProxyJump deploy@web:2202

Host *.corp bastion-?
    User corp

Host !excluded
    User nobody

Host plain

Host *
    User everyone
    IdentityFile ~/.ssh/id_default
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(CONFIG)
    return tmp_path


def _by_name(machines: list[Machine]) -> dict[str, Machine]:
    return {m.name: m for m in machines}


def test_import_resolves_fields(home):
    machines = _by_name(read_ssh_config(group="imported"))
    assert sorted(machines) == ["db", "db-replica", "plain", "web"]

    web = machines["web"]
    assert web.host == "web.example.org"
    assert web.user == "deploy"
    assert web.port == 2202
    assert web.auth == "key"
    assert web.key_path == str(home / ".ssh" / "id_web")
    assert web.group == "imported"


def test_import_proxy_jump_and_defaults(home):
    machines = _by_name(read_ssh_config())
    db = machines["db"]
    assert db.host == "10.1.2.3"
    assert db.jump_host == "deploy@web:2202"
    # `Host *` applies to every host that set nothing earlier.
    assert db.user == "everyone"
    assert db.key_path == str(home / ".ssh" / "id_default")
    assert machines["db-replica"].host == "10.1.2.3"
    assert machines["plain"].host == "plain"
    assert machines["plain"].port is None


def test_import_never_writes_the_file(home):
    path = home / ".ssh" / "config"
    before = path.stat().st_mtime_ns, path.read_text()
    read_ssh_config()
    assert (path.stat().st_mtime_ns, path.read_text()) == before


def test_missing_file_raises(tmp_path):
    with pytest.raises(SshConfigError, match="cannot read the SSH configuration"):
        read_ssh_config(tmp_path / "absent")


def test_new_machines_skips_known_names(home):
    imported = read_ssh_config()
    existing = [Machine.new("web", host="elsewhere")]
    assert [m.name for m in new_machines(imported, existing)] == [
        "db", "db-replica", "plain",
    ]  # fmt: skip
