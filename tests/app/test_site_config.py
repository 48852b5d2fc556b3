"""The site configuration file: managed machines, locked policies, problems with lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rpyc_explorer.machines import site_config
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.machines.site_config import (
    Policies,
    load_site_config,
    load_user_settings,
)
from rpyc_explorer.machines.store import MachineStore, ReadOnlyMachineError

COMPLETE = """\
version = 1

[policies]
store_passwords = false
allow_user_machines = false
default_python = "/opt/python3.12/bin/python3"
connect_timeout = 20

[[machines]]
id = "build-01"
name = "Build server"
host = "build01.example.com"
user = "deploy"
group = "Build farm"

[[machines]]
id = "db-01"
name = "Database"
host = "db01.example.com"
port = 2222
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_site_config_complete_file(tmp_path):
    config = load_site_config([write(tmp_path / "site.toml", COMPLETE)])
    assert config.problems == ()
    assert config.files == (tmp_path / "site.toml",)
    assert [m.id for m in config.machines] == ["build-01", "db-01"]
    assert all(m.managed for m in config.machines)
    assert config.machines[1].port == 2222
    policies = config.policies
    assert policies.store_passwords is False
    assert policies.allow_user_machines is False
    assert policies.default_python == "/opt/python3.12/bin/python3"
    assert policies.connect_timeout == 20.0
    assert policies.known_hosts is None
    assert policies.locked == {
        "store_passwords", "allow_user_machines", "default_python", "connect_timeout",
    }  # fmt: skip


def test_site_config_missing_files_give_defaults(tmp_path):
    config = load_site_config([tmp_path / "absent.toml"])
    assert config == site_config.SiteConfig()
    assert config.policies == Policies()


def test_site_config_malformed_line_reported_rest_applies(tmp_path):
    path = write(
        tmp_path / "site.toml",
        "[policies]\n"
        "store_passwords = false\n"
        "connect_timeout = = 3\n"
        "\n"
        "[[machines]]\n"
        'id = "m1"\n'
        'name = "One"\n'
        'host = "one.example"\n',
    )
    config = load_site_config([path])
    assert len(config.problems) == 1
    problem = config.problems[0]
    assert problem.path == path
    assert problem.line == 3
    assert "invalid TOML" in problem.reason
    assert str(problem).startswith(f"{path}, line 3: ")
    assert config.policies.store_passwords is False
    assert config.policies.connect_timeout is None
    assert [m.id for m in config.machines] == ["m1"]


def test_site_config_broken_header_keeps_other_sections(tmp_path):
    path = write(
        tmp_path / "site.toml",
        '[[machines]]\nid = "a"\nname = "A"\nhost = "a.example"\n\n'
        '[policies\nstore_passwords = false\n',
    )
    config = load_site_config([path])
    assert [m.id for m in config.machines] == ["a"]
    assert len(config.problems) == 1
    assert config.problems[0].line == 6
    assert "this section is ignored" in config.problems[0].reason
    assert config.policies.store_passwords is True


def test_site_config_invalid_machine_skipped_with_line(tmp_path):
    path = write(
        tmp_path / "site.toml",
        '[[machines]]\nid = "ok"\nname = "Ok"\nhost = "ok.example"\n\n'
        '[[machines]]\nid = "bad"\nname = "Bad"\nhost = "bad.example"\nport = 99999\n\n'
        '[[machines]]\nname = "No id"\nhost = "x.example"\n',
    )
    config = load_site_config([path])
    assert [m.id for m in config.machines] == ["ok"]
    port_problem, id_problem = config.problems
    assert port_problem.line == 10
    assert "'Bad'" in port_problem.reason
    assert "out of range" in port_problem.reason
    assert id_problem.line == 12  # the table's header: the key is absent
    assert "missing field 'id'" in id_problem.reason


def test_site_config_reserved_and_duplicate_ids(tmp_path):
    path = write(
        tmp_path / "site.toml",
        '[[machines]]\nid = "local"\nname = "Mine"\nkind = "local"\n\n'
        '[[machines]]\nid = "a"\nname = "A"\nhost = "a.example"\n\n'
        '[[machines]]\nid = "a"\nname = "A again"\nhost = "a2.example"\n',
    )
    config = load_site_config([path])
    assert [m.name for m in config.machines] == ["A"]
    reserved, duplicate = config.problems
    assert reserved.line == 2
    assert "reserved" in reserved.reason
    assert duplicate.line == 12
    assert "used twice" in duplicate.reason


def test_site_config_invalid_restricting_policy_is_false(tmp_path):
    path = write(
        tmp_path / "site.toml",
        '[policies]\nstore_passwords = "no"\nallow_user_machines = 0\nconnect_timeout = -1\n',
    )
    config = load_site_config([path])
    assert config.policies.store_passwords is False
    assert config.policies.allow_user_machines is False
    assert config.policies.connect_timeout is None
    lines = {p.line: p.reason for p in config.problems}
    assert "false applies" in lines[2]
    assert "false applies" in lines[3]
    assert "out of range" in lines[4]
    assert "connect_timeout" not in config.policies.locked


def test_site_config_unknown_keys_reported(tmp_path):
    path = write(
        tmp_path / "site.toml",
        'version = 1\ncolour = "red"\n\n[policies]\nstore_passwords = true\nmax_tabs = 3\n',
    )
    config = load_site_config([path])
    unknown_key, unknown_policy = config.problems
    assert unknown_key.line == 2
    assert "'colour'" in unknown_key.reason
    assert unknown_policy.line == 6
    assert "unknown policy 'max_tabs'" in unknown_policy.reason


def test_site_config_unsupported_version(tmp_path):
    path = write(tmp_path / "site.toml", "version = 2\n[policies]\nstore_passwords = false\n")
    config = load_site_config([path])
    assert config.problems[0].line == 1
    assert "version 2" in config.problems[0].reason
    assert config.policies.store_passwords is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"relative/known_hosts"', "absolute path"),
        ('"/nonexistent/known_hosts"', "does not exist"),
        ("3", "non-empty string"),
    ],
)
def test_site_config_known_hosts_checked(tmp_path, value, expected):
    path = write(tmp_path / "site.toml", f"[policies]\nknown_hosts = {value}\n")
    config = load_site_config([path])
    assert config.policies.known_hosts is None
    assert config.problems[0].line == 2
    assert expected in config.problems[0].reason


def test_site_config_known_hosts_accepted(tmp_path):
    known = write(tmp_path / "known_hosts", "")
    path = write(tmp_path / "site.toml", f'[policies]\nknown_hosts = "{known}"\n')
    assert load_site_config([path]).policies.known_hosts == known


def test_site_config_default_python_rejects_options(tmp_path):
    path = write(tmp_path / "site.toml", '[policies]\ndefault_python = "-c evil"\n')
    config = load_site_config([path])
    assert config.policies.default_python == ""
    assert "must not start with '-'" in config.problems[0].reason


def test_site_config_later_file_wins(tmp_path):
    bundle = write(
        tmp_path / "bundle.toml",
        '[policies]\nstore_passwords = false\nconnect_timeout = 30\n\n'
        '[[machines]]\nid = "a"\nname = "Old A"\nhost = "a.example"\n\n'
        '[[machines]]\nid = "b"\nname = "B"\nhost = "b.example"\n',
    )
    system = write(
        tmp_path / "system.toml",
        '[policies]\nconnect_timeout = 5\n\n[[machines]]\nid = "a"\nname = "New A"\nhost = "a2.example"\n',
    )
    config = load_site_config([bundle, system])
    assert config.policies.store_passwords is False
    assert config.policies.connect_timeout == 5.0
    assert {m.id: m.name for m in config.machines} == {"a": "New A", "b": "B"}
    assert config.files == (bundle, system)


def test_site_config_unreadable_file_reported(tmp_path):
    path = tmp_path / "site.toml"
    path.write_bytes(b"\xff\xfe[policies]\n")
    config = load_site_config([path])
    assert config.problems[0].path == path
    assert "cannot be read" in config.problems[0].reason


def test_user_settings_never_override_locked_policy(tmp_path):
    site = load_site_config(
        [write(tmp_path / "site.toml", "[policies]\nstore_passwords = false\n")]
    )
    config_dir = tmp_path / "user"
    config_dir.mkdir()
    write(config_dir / "settings.toml", "store_passwords = true\nconnect_timeout = 42\n")
    user, problems = load_user_settings(config_dir)
    assert problems == []
    assert user == {"store_passwords": True, "connect_timeout": 42.0}
    merged = site.policies.merged_with(user)
    assert merged.store_passwords is False
    assert merged.connect_timeout == 42.0
    assert merged.locked == {"store_passwords"}


def test_user_settings_invalid_values_reported(tmp_path):
    write(tmp_path / "settings.toml", 'store_passwords = "maybe"\nfavourite = 1\n')
    user, problems = load_user_settings(tmp_path)
    assert user == {}
    assert [p.line for p in problems] == [1, 2]
    assert "is ignored" in problems[0].reason
    assert "unknown policy 'favourite'" in problems[1].reason


def test_default_paths_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(site_config.SITE_ENV, str(tmp_path / "try.toml"))
    assert site_config.default_paths() == [tmp_path / "try.toml"]


def test_default_paths_frozen_bundle_first(tmp_path, monkeypatch):
    monkeypatch.delenv(site_config.SITE_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path}/high:{tmp_path}/low")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bundle" / "rpyc-explorer"))
    assert site_config.default_paths() == [
        tmp_path / "bundle" / "site.toml",
        tmp_path / "low" / "rpyc-explorer" / "site.toml",
        tmp_path / "high" / "rpyc-explorer" / "site.toml",
    ]


def test_store_refuses_user_machines_when_not_allowed(tmp_path):
    managed = load_site_config([write(tmp_path / "site.toml", COMPLETE)]).machines
    store = MachineStore(tmp_path / "config", managed=managed)
    store.allow_user_machines = False
    with pytest.raises(ReadOnlyMachineError, match="site policy does not allow adding"):
        store.add(Machine.new("mine", host="mine.example"))
    with pytest.raises(ReadOnlyMachineError, match="site policy"):
        store.clone("build-01")
    with pytest.raises(ReadOnlyMachineError, match="managed by the site"):
        store.update(managed[0].replace(name="renamed"))
    with pytest.raises(ReadOnlyMachineError, match="managed by the site"):
        store.remove("db-01")
    assert [m.id for m in store.machines()] == ["local", "build-01", "db-01"]
    assert not store.path.exists()
