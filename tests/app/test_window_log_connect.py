"""The log pane of the real window while "This computer" connects (real local deploys)."""

from __future__ import annotations

import collections

import pytest
from qt_wait import wait_for_widget
from rpyc_explorer.app import install_pane_handler, remove_pane_handler
from rpyc_explorer.machines.record import LOCAL_ID, Machine
from rpyc_explorer.widgets.log_pane import ALL_MACHINES

pytestmark = pytest.mark.gui

LOCAL_NAME = "This computer"
SECOND_NAME = "second local"


@pytest.fixture
def window(real_window):
    # run_window installs the same handler when the application starts.
    handler = install_pane_handler(real_window)
    yield real_window
    remove_pane_handler(handler)


def _lines_of(pane, machine_id: str) -> list[str]:
    return [e.text for e in pane._entries if e.machine_id == machine_id]


def test_log_pane_lists_connect_lines(qtbot, arun, window):
    pane = window.log_pane
    second = window.store.add(Machine.new(SECOND_NAME, kind="local"))

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        await window.connect_machine(second.id)
        await wait_for_widget(
            lambda: any("connected (" in t for t in _lines_of(pane, SECOND_NAME)),
            timeout=30,
        )
        await window.disconnect_machine(second.id)
        await window.disconnect_machine(LOCAL_ID)

    arun(scenario(), timeout=120)
    local_lines = _lines_of(pane, LOCAL_NAME)
    second_lines = _lines_of(pane, SECOND_NAME)
    assert any(f"{LOCAL_NAME}: connecting to" in t for t in local_lines)
    assert any(f"{LOCAL_NAME}: connected (explorer" in t for t in local_lines)
    assert any(f"{LOCAL_NAME}: closing the session" in t for t in local_lines)
    # The engine's deploy records name the machine only in the message.
    assert any(f"{LOCAL_NAME}: deployed in" in t for t in local_lines)
    assert any(f"{LOCAL_NAME}: closed in" in t for t in local_lines)
    assert any(f"{SECOND_NAME}: connected (explorer" in t for t in second_lines)
    # One line per record: the controller's `log` signal must not add copies.
    counts = collections.Counter(e.text for e in pane._entries)
    assert [text for text, n in counts.items() if n > 1] == []

    pane.show_machine(LOCAL_NAME)
    assert pane.machine_combo.currentText() == LOCAL_NAME
    shown = pane.visible_lines()
    assert any(f"{LOCAL_NAME}: connected (explorer" in t for t in shown)
    assert not any(SECOND_NAME in t for t in shown)
    assert pane.view.toPlainText() == "\n".join(shown)

    pane.show_machine(ALL_MACHINES)
    everything = pane.visible_lines()
    assert set(shown) < set(everything)
    assert any(f"{SECOND_NAME}: connected (explorer" in t for t in everything)
