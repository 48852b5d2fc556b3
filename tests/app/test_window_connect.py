"""Connecting "This computer" through the real window: a real local deploy each time."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from qt_wait import wait_for_widget
from rpyc_explorer.icons import ConnectionState
from rpyc_explorer.machines.record import LOCAL_ID, Machine
from rpyc_explorer.views.machine_tab import MachineTab
from rpyc_explorer.views.session_tabs import TabState

pytestmark = pytest.mark.gui


@pytest.fixture
def window(real_window):
    return real_window


def child_pids() -> set[int]:
    """Return the pids of this process's live (not zombie) children."""
    pids: set[int] = set()
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        pids.update(int(pid) for pid in children.read_text().split())
    return {pid for pid in pids if process_alive(pid)}


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def server_pid(session) -> int:
    return session.deployment.deployment.remote_pid


def test_window_connect_this_computer(qtbot, arun, window):
    async def scenario():
        await window.connect_machine(LOCAL_ID)
        session = window.tabs.session(LOCAL_ID)
        assert session is not None
        assert window.tabs.state(LOCAL_ID) is TabState.CONNECTED
        assert window.panel.state(LOCAL_ID) is ConnectionState.CONNECTED
        assert isinstance(window.tabs.view(LOCAL_ID), MachineTab)
        assert window.tabs.tabText(0) == "This computer"
        assert not window.tabs.tabIcon(0).isNull()
        entries, _total, error = await session.call("list_dir", "/")
        assert error is None or error == ""
        assert any(entry[0] == "tmp" for entry in entries)
        pid = server_pid(session)
        assert process_alive(pid)
        qtbot.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
        await window.wait_idle()
        return session, pid

    session, pid = arun(scenario(), timeout=60)
    assert window.tabs.count() == 0
    assert session.is_closed
    assert session.cleanup_problems == []
    assert not process_alive(pid)
    assert window.panel.state(LOCAL_ID) is ConnectionState.DISCONNECTED


def test_window_close_closes_real_sessions(qtbot, arun, window):
    async def scenario():
        await window.connect_machine(LOCAL_ID)
        session = window.tabs.session(LOCAL_ID)
        pid = server_pid(session)
        window.close()
        await wait_for_widget(lambda: not window.isVisible(), timeout=30)
        return session, pid

    session, pid = arun(scenario(), timeout=60)
    assert session.is_closed
    assert window.cleanup_problems == []
    assert not process_alive(pid)


def test_window_cancel_connect_leaves_no_process(qtbot, arun, window, tmp_path):
    # A slow interpreter wrapper keeps the deploy in its middle phases long enough
    # to press Cancel there.
    wrapper = tmp_path / "slow-python"
    wrapper.write_text(f'#!/bin/sh\nsleep 0.5\nexec {sys.executable} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    machine = window.store.add(
        Machine.new("slow local", kind="local", python=str(wrapper))
    )
    before = child_pids()

    async def scenario():
        window.connect_machine(machine.id)
        panel = window.tabs.progress_panel(machine.id)
        await wait_for_widget(
            lambda: panel.current_phase in ("uploading", "starting", "handshake"),
            timeout=30,
        )
        assert window.tabs.state(machine.id) is TabState.CONNECTING
        panel.cancel_button.click()
        await window.wait_idle()

    arun(scenario(), timeout=60)
    assert window.tabs.count() == 0
    assert window.tabs.session(machine.id) is None
    assert child_pids() - before == set()


def test_window_two_machines_at_once(qtbot, arun, window):
    second = window.store.add(Machine.new("second local", kind="local"))
    window.stall_monitor.start()

    async def scenario():
        first_task = window.connect_machine(LOCAL_ID)
        second_task = window.connect_machine(second.id)
        assert window.tabs.count() == 2
        await asyncio.gather(first_task, second_task)
        sessions = [window.tabs.session(LOCAL_ID), window.tabs.session(second.id)]
        assert all(s is not None for s in sessions)
        pids = [server_pid(s) for s in sessions]
        assert pids[0] != pids[1]
        assert window.tabs.tabText(1) == "second local"
        assert window.panel.state(second.id) is ConnectionState.CONNECTED

        await window.reconnect_machine(second.id)
        reconnected = window.tabs.session(second.id)
        assert reconnected is not sessions[1]
        assert sessions[1].is_closed
        assert server_pid(reconnected) != pids[1]
        assert not process_alive(pids[1])
        await window.close_sessions()
        return [*sessions, reconnected]

    sessions = arun(scenario(), timeout=90)
    window.stall_monitor.stop()
    assert all(s.is_closed for s in sessions)
    assert window.tabs.count() == 0
    # The worst stall is reported for benchmarks; speed is not asserted here.
    assert window.stall_monitor.ticks > 0
    assert window.stall_monitor.worst_ms >= 0


def test_window_ctrl_l_focuses_real_path_bar(qtbot, arun, window):
    async def scenario():
        await window.connect_machine(LOCAL_ID)
        qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        tab = window.tabs.view(LOCAL_ID)
        focused = await wait_for_widget(window.focusWidget)
        await window.close_sessions()
        return tab, focused

    tab, focused = arun(scenario(), timeout=60)
    path_bar = tab.files_pane.path_bar
    assert focused is path_bar or path_bar.isAncestorOf(focused)



async def show_files_tree(window):
    await window.connect_machine(LOCAL_ID)
    tab = window.tabs.view(LOCAL_ID)
    tab.tabs.setCurrentWidget(tab.files_pane)
    tab.files_pane.tree.setFocus()
    await wait_for_widget(lambda: tab.files_pane.tree.hasFocus())
    return tab.files_pane


# A second binding of one key in the window (a pane's QShortcut next to the
# window's action) makes Qt report an ambiguous shortcut and run neither.
def test_window_ctrl_l_reaches_the_path_bar(qtbot, arun, window):
    async def scenario():
        pane = await show_files_tree(window)
        qtbot.keyClick(pane.tree, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        await wait_for_widget(lambda: pane.path_bar.isAncestorOf(window.focusWidget()))
        await window.disconnect_machine(LOCAL_ID)

    arun(scenario(), timeout=120)


def test_window_f5_reaches_the_refresh_action(qtbot, arun, window):
    async def scenario():
        pane = await show_files_tree(window)
        refreshes = []
        window.actions.refresh.triggered.connect(lambda: refreshes.append(1))
        try:
            qtbot.keyClick(pane.tree, Qt.Key.Key_F5)
            assert refreshes == [1]
        finally:
            await window.disconnect_machine(LOCAL_ID)

    arun(scenario(), timeout=120)
