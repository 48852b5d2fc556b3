"""The site configuration applied at start: window, stores, connector and timeouts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import paramiko
import pytest
from qt_wait import visible_child, wait_for_widget
from PySide6.QtWidgets import QMessageBox
from rpyc_explorer.app import create_window, with_default_python
from rpyc_explorer.machines.known_hosts import HostKey, HostKeyStatus
from rpyc_explorer.machines.record import LOCAL_ID, Machine
from rpyc_explorer.machines.site_config import SITE_ENV, load_site_config
from rpyc_explorer.machines.store import ReadOnlyMachineError
from rpyc_explorer.session import connect_steps, ssh
from rpyc_explorer.views.machine_dialog import MachineDialog

REPO = Path(__file__).resolve().parents[2]
SITE = """\
[policies]
{policies}

[[machines]]
id = "build-01"
name = "Build server"
host = "build01.example.com"
group = "Build farm"
"""


@pytest.fixture
def site_file(tmp_path):
    def write(policies: str = "") -> Path:
        path = tmp_path / "site.toml"
        path.write_text(SITE.format(policies=policies), encoding="utf-8")
        return path

    return write


@pytest.fixture
def real_stores(app_dirs, memory_keyring, monkeypatch):
    """Let create_window build its own stores on the in-memory keyring."""
    monkeypatch.setattr(keyring, "get_keyring", lambda: memory_keyring)
    # create_window sets the session layer's timeouts; restore them afterwards.
    monkeypatch.setattr(ssh, "CONNECT_TIMEOUT_SECONDS", ssh.CONNECT_TIMEOUT_SECONDS)
    monkeypatch.setattr(connect_steps, "HOST_KEY_TIMEOUT", connect_steps.HOST_KEY_TIMEOUT)
    return app_dirs


def open_window(qtbot, site_path: Path | None):
    site = load_site_config([site_path] if site_path else [])
    window = create_window(site=site)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_site_machine_shown_managed(qtbot, arun, real_stores, site_file):
    window = open_window(qtbot, site_file())
    machine = window.store.get("build-01")
    assert machine.managed
    assert window.panel.machine_item("build-01") is not None
    window.panel.select_machine("build-01")
    assert not window.actions.edit_machine.isEnabled()
    assert not window.actions.delete_machine.isEnabled()
    with pytest.raises(ReadOnlyMachineError):
        window.store.update(machine.replace(host="elsewhere.example"))

    async def scenario():
        task = window.spawn(window.commands.delete("build-01"))
        box = await wait_for_widget(visible_child(window, QMessageBox))
        assert "managed by your site" in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        return await task

    assert arun(scenario()) is False
    assert window.store.get("build-01") == machine


def remember_box_hidden(window) -> bool:
    dialog = window.commands._make_dialog(None)
    try:
        return dialog.remember_box.isHidden()
    finally:
        dialog.deleteLater()


def test_site_password_policy_hides_remember(qtbot, real_stores, site_file):
    allowed = open_window(qtbot, site_file("store_passwords = true"))
    assert not remember_box_hidden(allowed)
    forbidden = open_window(qtbot, site_file("store_passwords = false"))
    assert remember_box_hidden(forbidden)
    assert not forbidden.commands.credentials.available
    assert "site policy" in forbidden.commands.credentials.unavailable_reason


def test_user_settings_cannot_unlock_policy(qtbot, real_stores, site_file):
    (real_stores["config"] / "settings.toml").write_text(
        "store_passwords = true\nallow_user_machines = true\n", encoding="utf-8"
    )
    window = open_window(qtbot, site_file("store_passwords = false\nallow_user_machines = false"))
    assert window.policies.store_passwords is False
    assert window.policies.allow_user_machines is False
    assert remember_box_hidden(window)
    assert not window.actions.new_machine.isEnabled()


def test_user_settings_fill_unlocked_policy(qtbot, real_stores, site_file):
    (real_stores["config"] / "settings.toml").write_text("store_passwords = false\n")
    window = open_window(qtbot, site_file())
    assert window.policies.store_passwords is False
    assert remember_box_hidden(window)


def test_site_forbids_user_machines(qtbot, arun, real_stores, site_file):
    window = open_window(qtbot, site_file("allow_user_machines = false"))
    assert not window.actions.new_machine.isEnabled()
    assert not window.actions.import_ssh.isEnabled()

    async def scenario():
        task = window.spawn(window.commands.clone("build-01"))
        box = await wait_for_widget(visible_child(window, QMessageBox))
        assert "site policy does not allow adding" in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        return await task

    assert arun(scenario()) is None
    assert [m.id for m in window.store.machines()] == [LOCAL_ID, "build-01"]


def test_site_allows_user_machines_by_default(qtbot, real_stores, site_file):
    window = open_window(qtbot, site_file())
    assert window.actions.new_machine.isEnabled()
    window.store.add(Machine.new("mine", host="mine.example"))
    assert [m.name for m in window.store.machines()][-1] == "mine"


def test_site_known_hosts_honoured(qtbot, real_stores, tmp_path, site_file):
    key = HostKey.from_pkey(paramiko.ECDSAKey.generate())
    known = tmp_path / "site_known_hosts"
    known.write_text(key.line("build01.example.com", 22) + "\n", encoding="utf-8")
    without = open_window(qtbot, site_file())
    assert without.commands.known_hosts.check("build01.example.com", 22, key).status is (
        HostKeyStatus.UNKNOWN
    )
    window = open_window(qtbot, site_file(f'known_hosts = "{known}"'))
    known_hosts = window.commands.known_hosts
    assert known in known_hosts.read_only_files
    assert known in known_hosts.ssh_files()
    assert known_hosts.check("build01.example.com", 22, key).status is HostKeyStatus.KNOWN
    known_hosts.forget("build01.example.com", 22)
    assert known.read_text(encoding="utf-8").count("build01.example.com") == 1


def test_site_connect_timeout_reaches_ssh(qtbot, real_stores, site_file):
    open_window(qtbot, site_file("connect_timeout = 7.5"))
    assert ssh.CONNECT_TIMEOUT_SECONDS == 8
    assert connect_steps.HOST_KEY_TIMEOUT == 7.5


def test_default_python_fills_empty_interpreter(arun):
    seen: list[Machine] = []

    async def connect(machine, reporter):
        seen.append(machine)
        return "session"

    wrapped = with_default_python(connect, "/opt/py/bin/python3")
    own = Machine.new("own", host="own.example", python="python3.9")
    assert arun(wrapped(Machine.this_computer(), None)) == "session"
    arun(wrapped(own, None))
    assert seen[0].python == "/opt/py/bin/python3"
    assert seen[0].id == LOCAL_ID
    assert seen[1].python == "python3.9"
    assert with_default_python(connect, "") is connect


def test_site_problems_listed_on_window(qtbot, real_stores, tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text("[policies]\nstore_passwords = false\nconnect_timeout = = 1\n")
    window = open_window(qtbot, bad)
    assert [str(p) for p in window.site_problems] == [
        f"{bad}, line 3: invalid TOML: Invalid value (at line 3, column 19); "
        "this line is ignored"
    ]
    assert window.policies.store_passwords is False


def test_app_starts_with_invalid_site_file(tmp_path):
    """The real entry point runs its smoke test despite a broken site file."""
    bad = tmp_path / "site.toml"
    bad.write_text('[[machines]]\nid = "x"\nname = \n\n[policies\n', encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8")
    env[SITE_ENV] = str(bad)
    result = subprocess.run(
        [sys.executable, "-m", "rpyc_explorer", "--smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "smoke: ok" in result.stdout
    assert f"{bad}, line 3: invalid TOML" in result.stderr
    assert f"{bad}, line 5: invalid TOML" in result.stderr


def test_no_timeout_policy_keeps_session_defaults(qtbot, real_stores, site_file, monkeypatch):
    monkeypatch.setattr(ssh, "CONNECT_TIMEOUT_SECONDS", 33)
    monkeypatch.setattr(connect_steps, "HOST_KEY_TIMEOUT", 44.0)
    open_window(qtbot, site_file())
    assert ssh.CONNECT_TIMEOUT_SECONDS == 33
    assert connect_steps.HOST_KEY_TIMEOUT == 44.0
