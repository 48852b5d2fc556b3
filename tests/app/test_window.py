"""The main window: machine commands through real dialogs, tabs, shortcuts, closing."""

from __future__ import annotations

import asyncio
import threading

import tomllib
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox
from qt_wait import visible_child, wait_for_widget
from rpyc_explorer.icons import ConnectionState
from rpyc_explorer.machines.credentials import SERVICE_NAME, CredentialStore
from rpyc_explorer.machines.record import LOCAL_ID, Machine
from rpyc_explorer.views import window_settings
from rpyc_explorer.views.machine_dialog import MachineDialog
from rpyc_explorer.views.session_tabs import TabState
from window_fakes import FakeSession, fake_connector, make_window


async def click_message_button(window, button: QMessageBox.StandardButton) -> None:
    box = await wait_for_widget(visible_child(window, QMessageBox))
    box.button(button).click()


def test_window_add_machine_through_dialog(qtbot, arun, parts, memory_keyring):
    window = make_window(qtbot, parts)

    async def scenario():
        window.actions.new_machine.trigger()
        dialog = await wait_for_widget(visible_child(window, MachineDialog))
        qtbot.keyClicks(dialog.name_edit, "build-01")
        assert dialog._errors["host"].text() == ""
        assert not dialog.ok_button.isEnabled()
        qtbot.keyClicks(dialog.host_edit, "build-01.example")
        qtbot.keyClicks(dialog.port_edit, "99999")
        assert "65535" in dialog._errors["port"].text()
        assert not dialog.ok_button.isEnabled()
        dialog.port_edit.setText("2222")
        assert dialog._errors["port"].text() == ""
        dialog.group_combo.setCurrentText("lab")
        dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("password"))
        dialog.remember_box.setChecked(True)
        qtbot.keyClicks(dialog.secret_edit, "hunter2")
        dialog.ok_button.click()
        await window.wait_idle()

    arun(scenario())
    saved = [m for m in parts["store"].machines() if m.name == "build-01"]
    assert len(saved) == 1
    machine = saved[0]
    assert machine.port == 2222
    assert machine.group == "lab"
    document = tomllib.loads(parts["store"].path.read_text())
    assert [m["name"] for m in document["machines"]] == ["build-01"]
    assert "hunter2" not in parts["store"].path.read_text()
    assert memory_keyring.entries[(SERVICE_NAME, f"{machine.id}/password")] == "hunter2"
    assert window.panel.machine_item(machine.id) is not None
    assert window.panel.current_machine_id() == machine.id


def test_window_edit_clone_delete(qtbot, arun, parts):
    store = parts["store"]
    original = store.add(Machine.new("web", host="web.example"))
    window = make_window(qtbot, parts)

    async def scenario():
        window.panel.select_machine(original.id)
        window.actions.edit_machine.trigger()
        dialog = await wait_for_widget(visible_child(window, MachineDialog))
        assert dialog.name_edit.text() == "web"
        dialog.name_edit.setText("web-renamed")
        dialog.ok_button.click()
        await window.wait_idle()
        assert store.get(original.id).name == "web-renamed"

        window.actions.clone_machine.trigger()
        await window.wait_idle()
        copies = [m for m in store.machines() if m.name == "web-renamed (copy)"]
        assert len(copies) == 1
        assert copies[0].id != original.id
        assert window.panel.current_machine_id() == copies[0].id

        # Answering No keeps the machine.
        window.actions.delete_machine.trigger()
        await click_message_button(window, QMessageBox.StandardButton.No)
        await window.wait_idle()
        assert any(m.id == copies[0].id for m in store.machines())

        window.actions.delete_machine.trigger()
        await click_message_button(window, QMessageBox.StandardButton.Yes)
        await window.wait_idle()
        assert not any(m.id == copies[0].id for m in store.machines())
        assert window.panel.machine_item(copies[0].id) is None

    arun(scenario())
    assert "web (copy)" not in store.path.read_text()


def test_window_delete_confirm_defaults_to_no(qtbot, arun, parts):
    machine = parts["store"].add(Machine.new("db", host="db.example"))
    window = make_window(qtbot, parts)

    async def scenario():
        window.panel.select_machine(machine.id)
        window.actions.delete_machine.trigger()
        box = await wait_for_widget(visible_child(window, QMessageBox))
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
        qtbot.keyClick(box, Qt.Key.Key_Return)
        await window.wait_idle()

    arun(scenario())
    assert parts["store"].get(machine.id).name == "db"


def test_window_managed_machine_not_editable(qtbot, arun, parts):
    managed = Machine.new("corp", host="corp.example", group="site")
    parts["store"].set_managed([managed])
    window = make_window(qtbot, parts)
    window.panel.select_machine(managed.id)
    assert not window.actions.edit_machine.isEnabled()
    assert not window.actions.delete_machine.isEnabled()
    assert window.actions.clone_machine.isEnabled()
    assert not window.panel.machine_item(managed.id).icon(1).isNull()

    async def scenario():
        # Even when asked directly, the command refuses with a message.
        task = window.spawn(window.commands.edit(managed.id))
        box = await wait_for_widget(visible_child(window, QMessageBox))
        assert "Clone" in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        return await task

    assert arun(scenario()) is None
    assert window.findChildren(MachineDialog) == []


def test_window_builtin_first_and_groups(qtbot, parts):
    store = parts["store"]
    store.add(Machine.new("b", host="b.example", group="lab"))
    store.add(Machine.new("a", host="a.example"))
    window = make_window(qtbot, parts)
    top = [
        window.panel.topLevelItem(i).text(0)
        for i in range(window.panel.topLevelItemCount())
    ]
    assert top == ["This computer", "lab", "a"]
    assert window.panel.topLevelItem(1).child(0).text(0) == "b"


def label_tab(session, parent):
    return QLabel(f"connected to {session.machine.name}", parent)


def test_window_tabs_state_and_ctrl_w(qtbot, arun, parts):
    # The connector is replaced: this test covers tab handling, the real connection
    # is covered by test_window_connect_this_computer.
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        assert window.tabs.state(LOCAL_ID) is TabState.CONNECTED
        assert window.panel.state(LOCAL_ID) is ConnectionState.CONNECTED
        assert window.tabs.tabText(0) == "This computer"
        session = window.tabs.session(LOCAL_ID)
        qtbot.keyClick(window, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
        await window.wait_idle()
        return session

    session = arun(scenario())
    assert session.closed_calls == 1
    assert window.tabs.count() == 0
    assert window.panel.state(LOCAL_ID) is ConnectionState.DISCONNECTED


def test_window_close_closes_every_session(qtbot, arun, parts):
    store = parts["store"]
    other = store.add(Machine.new("other", host="127.0.0.1"))
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        await window.connect_machine(other.id)
        sessions = [window.tabs.session(LOCAL_ID), window.tabs.session(other.id)]
        assert window.tabs.count() == 2
        window.close()
        await wait_for_widget(lambda: not window.isVisible())
        return sessions

    sessions = arun(scenario())
    assert [s.closed_calls for s in sessions] == [1, 1]
    assert window.tabs.count() == 0
    assert window_settings.read_list(parts["settings"], window_settings.OPEN_TABS) == [
        LOCAL_ID,
        other.id,
    ]


def test_window_close_while_connecting_cancels(qtbot, arun, parts):
    started = asyncio.Event()
    cancelled = []

    async def slow_connector(machine, reporter):
        reporter.phase("uploading")
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(machine.id)
            raise

    window = make_window(qtbot, parts, connector=slow_connector, tab_factory=label_tab)

    async def scenario():
        window.connect_machine(LOCAL_ID)
        await started.wait()
        panel = window.tabs.progress_panel(LOCAL_ID)
        assert panel.phase_state("uploading") == "running"
        assert panel.phase_state("finding-python") == "done"
        window.close()
        await wait_for_widget(lambda: not window.isVisible())

    arun(scenario())
    assert cancelled == [LOCAL_ID]
    assert window.tabs.count() == 0


def test_window_connect_failure_names_phase(qtbot, arun, parts):
    from rpyc_explorer.views.session_tabs import ConnectFailed

    async def failing(machine, reporter):
        reporter.phase("finding-python")
        raise ConnectFailed("no python3 found in PATH", "finding-python")

    window = make_window(qtbot, parts, connector=failing, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)

    arun(scenario())
    panel = window.tabs.progress_panel(LOCAL_ID)
    text = panel.error_label.text()
    assert "finding python" in text
    assert "no python3 found" in text
    assert "What to try" in text
    assert window.panel.state(LOCAL_ID) is ConnectionState.ERROR
    panel.log_button.click()
    assert window.log_dock.isVisible()
    assert window.log_pane.machine_combo.currentText() == "This computer"


def test_window_shortcuts(qtbot, parts):
    window = make_window(qtbot, parts)
    shortcuts = {a.objectName(): a.shortcut().toString() for a in window.actions.all()}
    assert shortcuts["refresh"] == "F5"
    assert shortcuts["focus_path"] == "Ctrl+L"
    assert shortcuts["close_tab"] == "Ctrl+W"
    assert shortcuts["new_machine"] == "Ctrl+N"
    assert shortcuts["quit"] == "Ctrl+Q"
    assert shortcuts["show_log"] == "Ctrl+Shift+L"
    assert shortcuts["about"] == "F1"
    window.log_dock.hide()
    qtbot.keyClick(
        window,
        Qt.Key.Key_L,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert window.log_dock.isVisible()


def test_window_settings_file_in_config_dir(qtbot, parts, app_dirs):
    window = make_window(qtbot, parts)
    window.save_state()
    path = app_dirs["config"] / window_settings.FILE_NAME
    assert path.is_file()
    assert "geometry" in path.read_text()


def test_window_import_ssh_config(qtbot, arun, parts, tmp_path):
    from rpyc_explorer.views.ssh_import_dialog import SshImportDialog

    config = tmp_path / "ssh_config"
    config.write_text("Host alpha\n  HostName alpha.example\nHost beta\n  User b\n")
    window = make_window(qtbot, parts)

    async def scenario():
        task = window.spawn(window.commands.import_ssh(config))
        dialog = await wait_for_widget(visible_child(window, SshImportDialog))
        dialog.tree.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)
        dialog.ok_button.click()
        return await task

    added = arun(scenario())
    assert [m.name for m in added] == ["alpha"]
    assert [m.name for m in parts["store"].machines()] == ["This computer", "alpha"]
    assert "alpha.example" in parts["store"].path.read_text()


def test_window_keyring_notice_once(qtbot, arun, parts, app_dirs):
    import keyring.backends.fail

    parts["credentials"] = CredentialStore(backend=keyring.backends.fail.Keyring())
    window = make_window(qtbot, parts)
    # Said at start in the log pane and status bar, not only on stderr.
    assert "gnome-keyring" in window.log_pane.view.toPlainText()
    assert "gnome-keyring" in window.statusBar().currentMessage()

    async def open_add_dialog():
        task = window.spawn(window.commands.add())
        return task, await wait_for_widget(
            lambda: (
                visible_child(window, QMessageBox)()
                or visible_child(window, MachineDialog)()
            )
        )

    async def scenario():
        task, first = await open_add_dialog()
        assert isinstance(first, QMessageBox)
        assert "asked for on every connection" in first.text()
        assert "gnome-keyring" in first.text()
        # No internal class name.
        assert "keyring.backends" not in first.text()
        first.button(QMessageBox.StandardButton.Ok).click()
        dialog = await wait_for_widget(visible_child(window, MachineDialog))
        dialog.auth_combo.setCurrentIndex(dialog.auth_combo.findData("password"))
        assert dialog.remember_box.isHidden()
        assert dialog.notice_label.isVisible()
        dialog.reject()
        await task
        task, second = await open_add_dialog()
        assert isinstance(second, MachineDialog)
        second.reject()
        await task

    arun(scenario())


def test_window_restores_open_tabs(qtbot, parts):
    other = parts["store"].add(Machine.new("other", host="other.example"))
    parts["settings"].setValue(window_settings.OPEN_TABS, [LOCAL_ID, "gone", other.id])
    window = make_window(qtbot, parts)
    assert window.restore_state() == [LOCAL_ID, other.id]


def test_window_about_dialog(qtbot, arun, parts):
    from rpyc_explorer.views.about_dialog import AboutDialog

    window = make_window(qtbot, parts)

    async def scenario():
        qtbot.keyClick(window, Qt.Key.Key_F1)
        dialog = await wait_for_widget(visible_child(window, AboutDialog))
        assert "RPyC Explorer" in dialog.label.text()
        dialog.reject()
        await window.wait_idle()

    arun(scenario())


def test_window_double_click_connects(qtbot, arun, parts):
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=label_tab)

    async def scenario():
        item = window.panel.machine_item(LOCAL_ID)
        rect = window.panel.visualItemRect(item)
        # Item views act on a double-click only after the press that selects the item.
        qtbot.mouseClick(
            window.panel.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
        )
        qtbot.mouseDClick(
            window.panel.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
        )
        await wait_for_widget(lambda: window.tabs.state(LOCAL_ID) is TabState.CONNECTED)
        await window.close_sessions()

    arun(scenario())
    assert window.tabs.count() == 0


def test_window_policy_blocks_user_machines(qtbot, parts):
    from rpyc_explorer.machines.site_config import Policies

    machine = parts["store"].add(Machine.new("web", host="web.example"))
    window = make_window(qtbot, parts)
    window.policies = Policies(allow_user_machines=False)
    window.panel.select_machine(machine.id)
    window.update_actions()
    assert not window.actions.new_machine.isEnabled()
    assert not window.actions.import_ssh.isEnabled()
    assert not window.actions.clone_machine.isEnabled()
    assert window.actions.connect.isEnabled()


class SpyTab(QLabel):
    """Records the calls the window makes on a connected machine's tab."""

    def __init__(self, session, parent):
        super().__init__(f"connected to {session.machine.name}", parent)
        self.calls: list[str] = []

    def refresh(self):
        self.calls.append("refresh")

    def focus_path_bar(self):
        self.calls.append("focus_path_bar")

    async def shutdown(self):
        self.calls.append("shutdown")


def test_window_f5_and_ctrl_l_reach_tab(qtbot, arun, parts):
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=SpyTab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        tab = window.tabs.view(LOCAL_ID)
        qtbot.keyClick(window, Qt.Key.Key_F5)
        qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        assert tab.calls == ["refresh", "focus_path_bar"]
        await window.close_sessions()
        return tab

    tab = arun(scenario())
    assert tab.calls[-1] == "shutdown"


def test_window_lost_session_marks_error(qtbot, arun, parts):
    from PySide6.QtCore import QObject, Signal

    class LosingSession(QObject):
        """A session whose connection drops, as RemoteSession reports it."""

        closed = Signal(str)

        def __init__(self, machine):
            super().__init__()
            self.machine = machine

        async def close(self):
            return []

    async def connector(machine, reporter):
        return LosingSession(machine)

    window = make_window(qtbot, parts, connector=connector, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        session = window.tabs.session(LOCAL_ID)
        # A dropped connection is noticed on a worker thread, so emit from one.
        worker = threading.Thread(
            target=session.closed.emit, args=("connection lost: EOF",)
        )
        worker.start()
        worker.join(timeout=5)
        await wait_for_widget(lambda: window.tabs.state(LOCAL_ID) is TabState.FAILED)

    arun(scenario())
    assert window.tabs.state(LOCAL_ID) is TabState.FAILED
    assert window.panel.state(LOCAL_ID) is ConnectionState.ERROR
    assert window.tabs.session(LOCAL_ID) is None
    page = window.tabs.widget(0)
    assert "connection lost: EOF" in page.currentWidget().text()
    window.panel.select_machine(LOCAL_ID)
    assert window.actions.reconnect.isEnabled()


def test_window_context_menu_has_forget_key(qtbot, parts):
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QMenu

    machine = parts["store"].add(Machine.new("web", host="web.example"))
    window = make_window(qtbot, parts)
    window.panel.select_machine(machine.id)
    window.panel.context_menu_requested.emit(machine.id, QPoint(10, 10))
    menu = next(m for m in window.findChildren(QMenu) if m.isVisible())
    names = [a.objectName() for a in menu.actions() if not a.isSeparator()]
    assert "forget_host_key" in names
    assert "edit_machine" in names
    assert window.actions.forget_host_key.isEnabled()
    menu.close()


def test_window_geometry_restored(qtbot, parts):
    first = make_window(qtbot, parts)
    first.resize(700, 500)
    first.log_dock.hide()
    first.save_state()
    first.close()
    second = make_window(qtbot, parts)
    second.restore_state()
    assert second.size().width() == 700
    assert second.size().height() == 500
    assert second.log_dock.isHidden()


def test_window_forget_rejected_secret_and_retry(qtbot, arun, parts, memory_keyring):
    from rpyc_explorer.machines.credentials import Secret
    from rpyc_explorer.views.session_tabs import ConnectFailed

    machine = parts["store"].add(Machine.new("pw", host="pw.example", auth="password"))
    parts["credentials"].set(machine.id, "password", Secret("old-password"))
    attempts = []

    async def connector(machine, reporter):
        attempts.append(machine.id)
        if len(attempts) == 1:
            raise ConnectFailed(
                "authentication failed",
                "authenticating",
                "",
                stored_secret_rejected=True,
            )
        return FakeSession(machine)

    window = make_window(qtbot, parts, connector=connector, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(machine.id)
        panel = window.tabs.progress_panel(machine.id)
        assert panel.forget_button.isVisible()
        panel.forget_button.click()
        await wait_for_widget(
            lambda: window.tabs.state(machine.id) is TabState.CONNECTED
        )
        await window.close_sessions()

    arun(scenario())
    assert attempts == [machine.id, machine.id]
    assert (SERVICE_NAME, f"{machine.id}/password") not in memory_keyring.entries


def test_window_forget_password_action(qtbot, arun, parts, memory_keyring):
    from rpyc_explorer.machines.credentials import Secret

    machine = parts["store"].add(Machine.new("pw", host="pw.example", auth="password"))
    parts["credentials"].set(machine.id, "password", Secret("s3cret"))
    window = make_window(qtbot, parts)
    window.panel.select_machine(machine.id)
    assert window.actions.forget_password.isEnabled()

    async def scenario():
        window.actions.forget_password.trigger()
        await click_message_button(window, QMessageBox.StandardButton.Yes)
        done = await wait_for_widget(
            lambda: next(
                (b for b in window.findChildren(QMessageBox)
                 if b.isVisible() and "was removed" in b.text()),
                None,
            )
        )  # fmt: skip
        done.button(QMessageBox.StandardButton.Ok).click()
        await window.wait_idle()

    arun(scenario())
    assert (SERVICE_NAME, f"{machine.id}/password") not in memory_keyring.entries
    window.panel.select_machine(LOCAL_ID)
    assert not window.actions.forget_password.isEnabled()


def test_window_ctrl_q_closes_sessions(qtbot, arun, parts):
    window = make_window(qtbot, parts, connector=fake_connector, tab_factory=label_tab)

    async def scenario():
        await window.connect_machine(LOCAL_ID)
        session = window.tabs.session(LOCAL_ID)
        qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
        await wait_for_widget(lambda: not window.isVisible())
        return session

    session = arun(scenario())
    assert session.closed_calls == 1


def test_window_icons_redrawn_for_dark_palette(qtbot, qapp, parts):
    from rpyc_explorer.theme import dark_palette

    window = make_window(qtbot, parts)
    light = window.actions.new_machine.icon().pixmap(16, 16).toImage()
    original = qapp.palette()
    qapp.setPalette(dark_palette())
    try:
        window.refresh_icons()
        dark = window.actions.new_machine.icon().pixmap(16, 16).toImage()
    finally:
        qapp.setPalette(original)
        window.refresh_icons()
    assert dark != light
