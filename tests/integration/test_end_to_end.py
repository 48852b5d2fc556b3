"""The real window against the loopback sshd: connect, browse, run code remotely.

The qasync fixtures and dialog helpers come from tests/app/conftest.py; the sshd
fixture from tests/integration/conftest.py. When the tests run as root, the remote side
logs in as the sshd's unprivileged test user, so the directory the test makes is
readable by everyone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

import pytest
from PySide6.QtCore import Qt
from rpyc_explorer.app import create_window
from rpyc_explorer.machines.credentials import CredentialStore
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.machines.store import MachineStore
from rpyc_explorer.views import window_settings
from rpyc_explorer.views.host_key_dialog import HostKeyDialog
from qt_wait import visible_child, wait_for_widget
from rpyc_explorer.views.session_tabs import TabState


pytestmark = [pytest.mark.ssh, pytest.mark.gui, pytest.mark.timeout(180)]
SCENARIO_TIMEOUT = 150


@pytest.fixture
def window(qtbot, app_dirs, memory_keyring):
    window = create_window(
        store=MachineStore(app_dirs["config"]),
        credentials=CredentialStore(backend=memory_keyring),
        known_hosts=KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[]),
        settings=window_settings.open_settings(app_dirs["config"]),
    )
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def shared_dir():
    path = tempfile.mkdtemp(prefix="explorer-e2e-")
    os.chmod(path, 0o755)
    for name in ("alpha.txt", "beta.txt"):
        with open(os.path.join(path, name), "w") as handle:
            handle.write(name)
        os.chmod(os.path.join(path, name), 0o644)
    yield path
    shutil.rmtree(path)


async def until(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "the window did not get there in time"
        await asyncio.sleep(0.02)


async def expand(tree, model, index) -> dict:
    tree.expand(index)
    await until(
        lambda: model.node(index).total is not None and not model.node(index).loading
    )
    rows = range(model.rowCount(index))
    return {
        model.index(row, 0, index).data(): model.index(row, 0, index) for row in rows
    }


def test_connect_browse_and_run_remote_code(
    qtbot, arun, window, sshd_server, shared_dir
):
    machine = window.store.add(
        Machine.new(
            "loopback", host=sshd_server.host, port=sshd_server.port,
            user=sshd_server.user, auth="key", key_path=sshd_server.key_path,
        )
    )  # fmt: skip
    finished: list = []

    async def scenario():
        task = window.connect_machine(machine.id)
        dialog = await wait_for_widget(visible_child(window, HostKeyDialog), timeout=60)
        dialog.accept_save_button.click()
        await task
        assert window.tabs.state(machine.id) is TabState.CONNECTED
        session = window.tabs.session(machine.id)
        tab = window.tabs.view(machine.id)

        modules = tab.modules_pane
        modules.filter_edit.setText("os")
        modules.filter_edit.editingFinished.emit()
        loaded = await expand(
            modules.tree, modules.model, modules.model.top_index("modules")
        )
        members = await expand(modules.tree, modules.model, loaded["os"])
        assert "path" in members
        assert "getcwd" in members

        files = tab.files_pane
        tab.tabs.setCurrentWidget(files)
        files.go_to(shared_dir)
        listing = await expand(files.tree, files.model, files.model.index(0, 0))
        assert sorted(listing) == ["alpha.txt", "beta.txt"]

        console = tab.console_pane
        console.runFinished.connect(lambda result, tb: finished.append((result, tb)))
        console.console.setFocus()
        qtbot.keyClicks(console.console, "import os; os.getpid()")
        qtbot.keyClick(console.console, Qt.Key_Return)
        await until(lambda: finished)
        # session.deployment is an Attempt whose deployment is the DeployedServer.
        remote_pid = session.deployment.deployment.remote_pid
        await window.disconnect_machine(machine.id)
        return remote_pid, session

    remote_pid, session = arun(scenario(), timeout=SCENARIO_TIMEOUT)
    result, traceback_text = finished[0]
    assert traceback_text == ""
    assert int(result) == remote_pid
    assert int(result) != os.getpid()
    assert session.is_closed
    assert session.cleanup_problems == []
