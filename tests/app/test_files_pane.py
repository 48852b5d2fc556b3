"""The files pane and the machine tab against a real ExplorerService over loopback."""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QVBoxLayout, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer_support import make_session, serve_explorer  # noqa: E402
from rpyc_explorer.models.files_model import PathRole  # noqa: E402
from rpyc_explorer.transfers import Transfer  # noqa: E402
from rpyc_explorer.views.files_pane import FilesPane, conflict_text  # noqa: E402
from rpyc_explorer.views.machine_tab import MachineTab  # noqa: E402


@pytest.fixture
def session(qloop):
    with serve_explorer() as (conn, _counter):
        remote = make_session(conn)
        yield remote
        qloop.run_until_complete(remote.close())


@pytest.fixture
def pane(qtbot, qloop, session):
    widget = FilesPane(session)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    yield widget
    qloop.run_until_complete(widget.shutdown())


async def wait_until(predicate, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def names(model, index) -> list[str]:
    return [model.index(row, 0, index).data() for row in range(model.rowCount(index))]


def loaded(model, index) -> bool:
    node = model.node(index)
    return node.total is not None and not node.loading


def open_dir(pane, arun, path: Path):
    pane.go_to(str(path))
    top = pane.model.index(0, 0)
    arun(wait_until(lambda: loaded(pane.model, top)))
    return top


def test_start_shows_home_and_root(pane, arun):
    arun(pane.start())
    assert pane.model.root_paths() == [os.path.expanduser("~"), "/"]
    assert pane.path_bar.text() == os.path.expanduser("~")
    arun(wait_until(lambda: loaded(pane.model, pane.model.index(0, 0))))


def test_path_bar_opens_directory(pane, arun, qtbot, tmp_path):
    (tmp_path / "hello.txt").write_text("hi")
    pane.focus_path_bar()
    pane.path_bar.setText(str(tmp_path))
    qtbot.keyClick(pane.path_bar, "\r")
    top = pane.model.index(0, 0)
    arun(wait_until(lambda: loaded(pane.model, top)))
    assert names(pane.model, top) == ["hello.txt"]


def test_vanished_directory_shows_error_row(pane, arun, tmp_path):
    top = open_dir(pane, arun, tmp_path / "gone")
    text = pane.model.index(0, 0, top).data()
    assert text == f"⚠ No such file or directory: {tmp_path / 'gone'}"


def test_preview_text_and_binary(pane, arun, tmp_path):
    (tmp_path / "a.txt").write_text("line one\nline two\n")
    (tmp_path / "b.bin").write_bytes(b"\0\1\2" * 100)
    top = open_dir(pane, arun, tmp_path)
    pane.tree.setCurrentIndex(pane.model.index(0, 0, top))
    arun(wait_until(lambda: pane.preview.toPlainText() == "line one\nline two\n"))
    pane.tree.setCurrentIndex(pane.model.index(1, 0, top))
    arun(wait_until(lambda: "binary file" in pane.preview.toPlainText()))


def test_new_folder_rename_delete(pane, arun, tmp_path, monkeypatch):
    top = open_dir(pane, arun, tmp_path)
    pane.tree.setCurrentIndex(top)
    answers = iter(["made", "renamed"])
    monkeypatch.setattr(pane, "ask_text", lambda *args, **kwargs: next(answers))
    pane.new_folder()
    arun(
        wait_until(
            lambda: (tmp_path / "made").is_dir() and names(pane.model, top) == ["made"]
        )
    )
    pane.tree.setCurrentIndex(pane.model.index(0, 0, top))
    pane.rename_selected()
    arun(wait_until(lambda: names(pane.model, top) == ["renamed"]))
    assert (tmp_path / "renamed").is_dir()
    questions = []
    monkeypatch.setattr(pane, "confirm", lambda text: questions.append(text) or False)
    pane.tree.setCurrentIndex(pane.model.index(0, 0, top))
    pane.delete_selected()
    assert (tmp_path / "renamed").is_dir()
    monkeypatch.setattr(pane, "confirm", lambda text: questions.append(text) or True)
    pane.delete_selected()
    arun(wait_until(lambda: not (tmp_path / "renamed").exists()))
    arun(wait_until(lambda: names(pane.model, top) == []))
    assert "everything in it" in questions[0]


def test_delete_confirmation_enter_keeps_file(pane, qtbot, tmp_path):
    pressed = []

    def press_enter() -> None:
        box = QApplication.activeModalWidget()
        pressed.append(box)
        qtbot.keyClick(box, Qt.Key_Return)

    QTimer.singleShot(0, press_enter)
    assert pane.confirm(f"Delete {tmp_path / 'x'}? This cannot be undone.") is False
    assert len(pressed) == 1
    assert pressed[0] is not None


def test_action_error_shows_banner(pane, arun, tmp_path, monkeypatch):
    (tmp_path / "exists").mkdir()
    top = open_dir(pane, arun, tmp_path)
    pane.tree.setCurrentIndex(top)
    monkeypatch.setattr(pane, "ask_text", lambda *args, **kwargs: "exists")
    pane.new_folder()
    arun(wait_until(lambda: pane.banner.isVisibleTo(pane)))
    assert pane.banner.text() == (
        f"⚠ mkdir failed: File exists: {tmp_path / 'exists'}"
    )


def test_conflict_text_shows_both_files():
    transfer = Transfer(
        "download",
        "/tmp/x.conf",
        "/etc/x.conf",
        source_info=(2048, datetime.datetime(2026, 1, 2, 3, 4, 5).timestamp()),
        target_info=(14, datetime.datetime(2025, 6, 7, 8, 9, 10).timestamp()),
    )
    lines = conflict_text(transfer).splitlines()
    assert lines[0] == "/tmp/x.conf already exists on this computer."
    assert "Existing file: 14 B, modified 2025-06-07 08:09:10" in lines
    assert "Incoming file: 2.0 KiB, modified 2026-01-02 03:04:05" in lines


def test_navigation_clears_preview_and_error(pane, arun, tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old text")
    (tmp_path / "exists").mkdir()
    top = open_dir(pane, arun, tmp_path)
    pane.tree.setCurrentIndex(pane.model.index(1, 0, top))  # folders come first
    arun(wait_until(lambda: pane.preview.toPlainText() == "old text"))
    monkeypatch.setattr(pane, "ask_text", lambda *args, **kwargs: "exists")
    pane.new_folder()
    arun(wait_until(lambda: pane.banner.isVisibleTo(pane)))
    pane.show_home()
    assert pane.preview.toPlainText() == ""
    assert not pane.banner.isVisibleTo(pane)


def test_successful_transfer_clears_error(pane, arun, tmp_path):
    (tmp_path / "up.txt").write_text("payload")
    pane.show_error("mkdir failed: Permission denied: /etc/x")
    (transfer,) = pane.queue_upload([str(tmp_path / "up.txt")], str(tmp_path / "to"))
    (tmp_path / "to").mkdir()
    arun(wait_until(lambda: transfer.state == "done"))
    assert not pane.banner.isVisibleTo(pane)


def test_upload_refreshes_directory(pane, arun, tmp_path):
    local = tmp_path / "local"
    remote = tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    (local / "up.txt").write_text("payload")
    top = open_dir(pane, arun, remote)
    (transfer,) = pane.queue_upload([str(local / "up.txt")], str(remote))
    arun(wait_until(lambda: transfer.state == "done"))
    arun(wait_until(lambda: names(pane.model, top) == ["up.txt"]))
    assert pane.model.index(0, 0, top).data(PathRole) == str(remote / "up.txt")
    assert pane.transfers.tree.topLevelItem(0).text(4) == "done"


def test_filter_placeholder_not_clipped(pane, qtbot):
    edit = pane.filter_edit
    qtbot.waitExposed(pane)
    needed = edit.fontMetrics().horizontalAdvance(edit.placeholderText())
    # The frame and text margins take a few pixels on each side.
    assert edit.width() >= needed + 12


def test_transfer_progress_not_clipped(pane, arun, tmp_path):
    (tmp_path / "up.bin").write_bytes(b"x" * 3000)
    (tmp_path / "to").mkdir()
    (transfer,) = pane.queue_upload([str(tmp_path / "up.bin")], str(tmp_path / "to"))
    arun(wait_until(lambda: transfer.state == "done"))
    tree = pane.transfers.tree
    item = tree.topLevelItem(0)
    assert item.text(2) == "100 %  (2.9 KiB of 2.9 KiB)"
    for column in (1, 2, 3):
        needed = tree.fontMetrics().horizontalAdvance(item.text(column))
        assert tree.header().sectionSize(column) > needed, item.text(column)


def test_machine_tab_combines_panes(qtbot, qloop, session, arun):
    tab = MachineTab(session)
    qtbot.addWidget(tab)
    arun(wait_until(lambda: tab.files_pane.model.root_paths() != []))
    tab.focus_path_bar()
    assert tab.tabs.currentWidget() is tab.files_pane
    tab.refresh()
    arun(tab.shutdown())


@pytest.mark.parametrize("shown", ["modules", "files"])
def test_window_ctrl_l_focuses_path_bar(shown, qtbot, session, arun):
    # The window's menu action owns Ctrl+L; a second binding in the pane would make
    # Qt report an ambiguous shortcut and run neither.
    window = QWidget()
    qtbot.addWidget(window)
    tab = MachineTab(session, window)
    QVBoxLayout(window).addWidget(tab)
    action = QAction("Go to path", window)
    action.setShortcut(QKeySequence("Ctrl+L"))
    action.triggered.connect(tab.focus_path_bar)
    window.addAction(action)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    arun(wait_until(lambda: tab.files_pane.model.root_paths() != []))
    tab.tabs.setCurrentWidget(getattr(tab, f"{shown}_pane"))
    tab.console_pane.setFocus()
    qtbot.keyClick(tab.console_pane, Qt.Key_L, Qt.ControlModifier)
    assert tab.tabs.currentWidget() is tab.files_pane
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tab.files_pane.path_bar)
    assert tab.files_pane.path_bar.selectedText() == tab.files_pane.path_bar.text()
    arun(tab.shutdown())


def test_sorting_keeps_expanded_directories(pane, arun, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "small").write_bytes(b"x")
    (tmp_path / "sub" / "big").write_bytes(b"x" * 100)
    top = open_dir(pane, arun, tmp_path)
    sub = pane.model.index(0, 0, top)
    pane.tree.expand(sub)
    arun(wait_until(lambda: names(pane.model, sub) == ["big", "small"]))
    pane.tree.header().setSortIndicator(1, Qt.AscendingOrder)  # like a header click

    def sub_in_size_order() -> bool:
        top = pane.model.index(0, 0)
        sub = pane.model.index(0, 0, top)
        return (
            pane.tree.isExpanded(top)
            and pane.tree.isExpanded(sub)
            and names(pane.model, sub) == ["small", "big"]
        )

    arun(wait_until(sub_in_size_order))


def test_refresh_shows_new_files(pane, arun, qtbot, tmp_path):
    (tmp_path / "first").touch()
    top = open_dir(pane, arun, tmp_path)
    assert names(pane.model, top) == ["first"]
    (tmp_path / "second").touch()
    pane.tree.setCurrentIndex(top)
    pane.tree.setFocus()
    pane.refresh()
    arun(wait_until(lambda: names(pane.model, top) == ["first", "second"]))


@pytest.fixture
def large_dir(tmp_path):
    directory = tmp_path / "large"
    directory.mkdir()
    for number in range(10_000):
        (directory / f"f{number:05d}").touch()
    return directory


def test_unscrolled_pane_loads_one_page(pane, arun, large_dir):
    top = open_dir(pane, arun, large_dir)
    assert pane.model.node(top).loaded_items() == pane.model.page_size
    # Give the view its relayouts and scroll checks; none of them may load a page.
    arun(asyncio.sleep(0.5))
    assert pane.tree.load_visible_pages() == 0
    assert pane.model.pages_requested == 1
    assert not pane.model.node(top).loading
    assert pane.model.rowCount(top) == pane.model.page_size


def test_scrolling_to_bottom_loads_next_page(pane, arun, large_dir):
    top = open_dir(pane, arun, large_dir)
    page = pane.model.page_size
    pane.tree.scrollToBottom()
    arun(wait_until(lambda: pane.model.node(top).loaded_items() == 2 * page))
    assert pane.model.pages_requested == 2
    assert names(pane.model, top)[page] == f"f{page:05d}"


def test_short_pages_fill_viewport(pane, arun, tmp_path):
    for number in range(30):
        (tmp_path / f"f{number:02d}").touch()
    pane.model.page_size = 4
    top = open_dir(pane, arun, tmp_path)
    # Four rows leave the viewport mostly empty, so the view asks for more itself.
    arun(wait_until(lambda: pane.model.node(top).loaded_items() == 30))
    assert names(pane.model, top) == [f"f{number:02d}" for number in range(30)]
    assert pane.model.pages_requested == 8
