"""The first start's window size and dock height; saved layouts still win."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from rpyc_explorer.views.main_window import LOG_DOCK_HEIGHT, first_size
from window_fakes import make_window


@pytest.mark.parametrize(
    ("screen", "size"),
    [
        (QRect(0, 0, 2560, 1400), QSize(2048, 1120)),
        (QRect(0, 0, 1366, 740), QSize(1200, 740)),
        (QRect(0, 0, 1000, 700), QSize(1000, 700)),
        (None, QSize(1200, 800)),
    ],
)
def test_first_size(screen, size):
    assert first_size(screen) == size


def test_first_start_log_dock_is_short(qtbot, parts):
    window = make_window(qtbot, parts)
    assert window.log_dock.height() <= LOG_DOCK_HEIGHT + 20
    assert window.panel.width() < window.center.width()


def test_saved_dock_height_wins(qtbot, parts):
    window = make_window(qtbot, parts)
    window.resize(1200, 900)
    window.resizeDocks([window.log_dock], [400], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: window.log_dock.height() > 300, timeout=3000)
    window.save_state()
    window.close()
    again = make_window(qtbot, parts)
    again.restore_state()
    qtbot.waitUntil(lambda: again.log_dock.height() > 300, timeout=3000)


def test_export_log_says_where_in_status_bar(qtbot, parts, tmp_path):
    window = make_window(qtbot, parts)
    target = tmp_path / "window.log"
    window.log_pane.export_to(target)
    assert window.statusBar().currentMessage() == f"Log exported to {target}"


def test_log_dock_follows_new_lines_unless_scrolled_up(qtbot, parts):
    import logging

    from rpyc_explorer.app import install_pane_handler, remove_pane_handler

    window = make_window(qtbot, parts)
    handler = install_pane_handler(window)
    logger = logging.getLogger("rpyc_explorer.test_window_layout")
    scrollbar = window.log_pane.view.verticalScrollBar()
    try:
        for number in range(60):
            logger.info("line %d", number)
            qtbot.wait(2)
        # A line wider than the dock adds the horizontal scroll bar, which makes
        # the view shorter after the line was added.
        logger.info("wide %s", "x" * 500)
        for number in range(10):
            logger.info("after the wide line %d", number)
            qtbot.wait(2)
        assert scrollbar.maximum() > 0
        assert scrollbar.value() == scrollbar.maximum()
        scrollbar.setValue(10)
        logger.info("one more")
        qtbot.wait(2)
        assert scrollbar.value() == 10
    finally:
        remove_pane_handler(handler)
