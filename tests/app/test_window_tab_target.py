"""Machine commands act on the tab in front; ending a busy session asks first."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox
from qt_wait import visible_child, wait_for_widget
from rpyc_explorer.machines.record import LOCAL_ID, Machine
from window_fakes import BusyTab, fake_connector, make_window


def two_tabs(qtbot, arun, parts):
    other = parts["store"].add(Machine.new("other", host="127.0.0.1"))
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=BusyTab)

    async def connect_both():
        await window.connect_machine(LOCAL_ID)
        window.panel.select_machine(other.id)
        await window.connect_machine(other.id)

    arun(connect_both())
    return window, other


def test_disconnect_closes_the_tab_in_front(qtbot, arun, parts):
    window, other = two_tabs(qtbot, arun, parts)
    window.tabs.setCurrentIndex(0)
    assert window.panel.current_machine_id() == LOCAL_ID

    async def scenario():
        window.actions.disconnect.trigger()
        await window.wait_idle()

    arun(scenario())
    assert window.tabs.machine_ids() == [other.id]


def test_disconnect_follows_the_focused_tab_area(qtbot, arun, parts):
    window, other = two_tabs(qtbot, arun, parts)
    window.tabs.setCurrentIndex(0)
    window.panel.select_machine(other.id)
    window.tabs.setFocus()
    qtbot.waitUntil(window.tabs.hasFocus, timeout=3000)
    assert window.target_machine_id() == LOCAL_ID


def test_disconnect_asks_while_the_console_runs(qtbot, arun, parts):
    window, other = two_tabs(qtbot, arun, parts)
    window.tabs.view(other.id).console_pane.console.running = True

    async def answer(button):
        window.actions.disconnect.trigger()
        box = await wait_for_widget(visible_child(window, QMessageBox))
        assert "running code" in box.text()
        box.button(button).click()
        await window.wait_idle()

    arun(answer(QMessageBox.StandardButton.No))
    assert window.tabs.machine_ids() == [LOCAL_ID, other.id]
    arun(answer(QMessageBox.StandardButton.Yes))
    assert window.tabs.machine_ids() == [LOCAL_ID]


def test_retry_uses_the_edited_machine(qtbot, arun, parts):
    from rpyc_explorer.views.session_tabs import ConnectFailed

    store = parts["store"]
    machine = store.add(Machine.new("build", host="127.0.0.1", port=1))
    ports = []

    async def refusing(machine, reporter):
        ports.append(machine.port)
        raise ConnectFailed(f"port {machine.port} refused", "connecting")

    window = make_window(qtbot, parts, connector=refusing, tab_factory=BusyTab)

    async def scenario():
        await window.connect_machine(machine.id)
        store.update(machine.replace(port=2))
        window.tabs.progress_panel(machine.id).retry_button.click()
        await window.tabs.connect_task(machine.id)

    arun(scenario())
    assert ports == [1, 2]


def test_reconnect_keeps_the_tab_position(qtbot, arun, parts):
    window, other = two_tabs(qtbot, arun, parts)
    arun(window.reconnect_machine(LOCAL_ID))
    assert window.tabs.machine_ids() == [LOCAL_ID, other.id]
    assert window.tabs.current_machine_id() == LOCAL_ID


def test_close_tab_asks_while_the_console_runs(qtbot, arun, parts):
    window, other = two_tabs(qtbot, arun, parts)
    window.tabs.view(other.id).console_pane.console.running = True

    async def refuse(close):
        close()
        box = await wait_for_widget(visible_child(window, QMessageBox))
        box.button(QMessageBox.StandardButton.No).click()
        await window.wait_idle()

    arun(refuse(window.close_current_tab))
    arun(refuse(lambda: window.tabs.tabCloseRequested.emit(1)))
    assert window.tabs.machine_ids() == [LOCAL_ID, other.id]
