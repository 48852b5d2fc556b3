"""MachineStore: TOML round trip, atomic writes, corrupt files, managed machines."""

from __future__ import annotations

import os

import pytest
import tomllib
from rpyc_explorer.machines import atomic as atomic_module
from rpyc_explorer.machines.record import InvalidMachineError, Machine
from rpyc_explorer.machines.store import (
    MachineStore,
    ReadOnlyMachineError,
    StoreWriteError,
    UnknownMachineError,
)


def _ssh(name: str = "web", **fields: object) -> Machine:
    fields.setdefault("host", "web.example")
    return Machine.new(name, **fields)


def test_round_trip_keeps_every_field(tmp_path):
    full = Machine.new(
        "build box", kind="ssh", host="10.0.0.5", port=2222, user="ci",
        auth="key", key_path="~/.ssh/id_ed25519", jump_host="bastion:22",
        python="/opt/py/bin/python3", group="lab",
    )  # fmt: skip
    rpyc = Machine.new(
        "tls server", kind="rpyc", host="127.0.0.1", port=18821, rpyc_tls=True,
        rpyc_certfile="c.pem", rpyc_keyfile="k.pem", rpyc_ca_certs="ca.pem",
        rpyc_classic=False,
    )  # fmt: skip
    store = MachineStore(tmp_path)
    store.add(full)
    store.add(rpyc)

    reloaded = MachineStore(tmp_path)
    assert reloaded.problems == []
    assert reloaded.get(full.id) == full
    assert reloaded.get(rpyc.id) == rpyc
    assert [m.id for m in reloaded.machines()] == ["local", full.id, rpyc.id]


def test_this_computer_is_always_listed(tmp_path):
    store = MachineStore(tmp_path)
    local = store.machines()[0]
    assert local.kind == "local"
    assert local.id == "local"
    assert not local.editable
    assert not (tmp_path / "machines.toml").exists()


def test_update_remove_clone_and_groups(tmp_path):
    store = MachineStore(tmp_path)
    machine = store.add(_ssh(group="b"))
    store.update(machine.replace(name="renamed", group="a"))
    copy = store.clone(machine.id)
    assert copy.id != machine.id
    assert copy.name == "renamed (copy)"
    assert store.groups() == ["a"]
    store.remove(machine.id)
    assert [m.id for m in MachineStore(tmp_path).machines()] == ["local", copy.id]
    with pytest.raises(UnknownMachineError, match="no machine has id"):
        store.remove(machine.id)


def test_listener_called_on_change(tmp_path):
    store = MachineStore(tmp_path)
    calls = []
    store.add_listener(lambda: calls.append(1))
    store.add(_ssh())
    assert calls == [1]


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    """A crash between writing the temp file and os.replace, simulated by patching."""
    store = MachineStore(tmp_path)
    first = store.add(_ssh("first"))
    before = (tmp_path / "machines.toml").read_bytes()

    def crash(src, dst):
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(atomic_module.os, "replace", crash)
    with pytest.raises(StoreWriteError, match="previous file is unchanged"):
        store.add(_ssh("second"))
    monkeypatch.undo()

    assert (tmp_path / "machines.toml").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["machines.toml"]
    assert [m.id for m in store.machines()] == ["local", first.id]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_raises_write_error(tmp_path):
    store = MachineStore(tmp_path)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreWriteError, match=str(tmp_path)):
            store.add(_ssh())
    finally:
        tmp_path.chmod(0o700)


def test_corrupt_file_moved_to_backup(tmp_path):
    path = tmp_path / "machines.toml"
    path.write_text('version = 1\n[[machines]]\nname = "web\nhost = 1\n')
    store = MachineStore(tmp_path)

    assert len(store.problems) == 1
    problem = store.problems[0]
    assert problem.line == 3
    assert "not valid TOML" in str(problem)
    assert problem.backup is not None
    assert problem.backup.read_text().startswith("version = 1")
    assert str(problem.backup) in str(problem)
    assert not path.exists()

    # Saving afterwards writes a fresh file and leaves the backup alone.
    store.add(_ssh())
    assert problem.backup.exists()
    assert path.exists()


def test_invalid_field_names_file_and_line(tmp_path):
    path = tmp_path / "machines.toml"
    path.write_text(
        "version = 1\n\n"
        '[[machines]]\nid = "a1"\nname = "good"\nhost = "h"\n\n'
        '[[machines]]\nid = "b2"\nname = "bad port"\nhost = "h"\nport = "twenty-two"\n'
    )
    store = MachineStore(tmp_path)

    assert [m.id for m in store.machines()] == ["local", "a1"]
    assert len(store.problems) == 1
    problem = store.problems[0]
    assert problem.line == 12
    text = str(problem)
    assert f"{path}, line 12" in text
    assert "'bad port' was skipped" in text
    assert "port must be an integer" in text
    assert problem.backup is not None
    assert "twenty-two" in problem.backup.read_text()


def test_unknown_field_reported(tmp_path):
    (tmp_path / "machines.toml").write_text(
        '[[machines]]\nid = "a1"\nname = "x"\nhost = "h"\nprot = 22\n'
    )
    problem = MachineStore(tmp_path).problems[0]
    assert problem.line == 5
    assert "unknown field 'prot'" in problem.reason


def test_newer_format_version_kept(tmp_path):
    (tmp_path / "machines.toml").write_text("version = 7\n")
    store = MachineStore(tmp_path)
    assert "format version 7" in str(store.problems[0])
    assert store.problems[0].backup is not None


def test_managed_machines_read_only(tmp_path):
    site = Machine.new("site box", host="site.example")
    store = MachineStore(tmp_path, managed=[site])
    listed = store.get(site.id)
    assert listed.managed
    assert not listed.editable
    with pytest.raises(ReadOnlyMachineError, match="managed by the site"):
        store.update(listed.replace(name="mine"))
    with pytest.raises(ReadOnlyMachineError, match="clone it"):
        store.remove(site.id)
    with pytest.raises(ReadOnlyMachineError, match="built in"):
        store.remove("local")

    copy = store.clone(site.id)
    assert copy.editable
    saved = tomllib.loads((tmp_path / "machines.toml").read_text())
    assert [m["id"] for m in saved["machines"]] == [copy.id]
    assert "managed" not in saved["machines"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "telnet"}, "kind"),
        ({"port": 70000}, "port"),
        ({"host": ""}, "host"),
        ({"host": "-oProxyCommand=x"}, "host"),
        ({"auth": "key"}, "key_path"),
        ({"user": "a b"}, "user"),
    ],
)
def test_invalid_record_rejected(fields, field):
    with pytest.raises(InvalidMachineError) as info:
        _ssh(**fields)
    assert info.value.field == field
