"""The console widget and pane against a real ExplorerService over loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer_support import make_session, serve_explorer  # noqa: E402
from rpyc_explorer.views.console_pane import ConsolePane  # noqa: E402
from rpyc_explorer.widgets.console import ConsoleWidget  # noqa: E402
from rpyc_explorer.widgets.console_history import History, history_path  # noqa: E402


@pytest.fixture
def pane(qtbot, qloop, app_dirs):
    with serve_explorer() as (conn, _counter):
        session = make_session(conn)
        widget = ConsolePane(session)
        qtbot.addWidget(widget)
        yield widget
        qloop.run_until_complete(widget.shutdown())
        qloop.run_until_complete(session.close())


def type_and_enter(qtbot, console: ConsoleWidget, text: str) -> None:
    lines = text.split("\n")
    for number, line in enumerate(lines):
        console.textCursor().insertText(line)
        if number < len(lines) - 1:
            qtbot.keyClick(console, Qt.Key_Return, Qt.ShiftModifier)
    qtbot.keyClick(console, Qt.Key_Return)


async def wait_until(predicate, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def emitted(arun, signal, action) -> list:
    """Run ``action`` and return the arguments of the next ``signal`` emission.

    qtbot.waitSignal spins a plain Qt event loop, in which asyncio tasks cannot call
    the session, so the wait runs on the qasync loop instead.
    """

    async def wait() -> list:
        future = asyncio.get_running_loop().create_future()

        def slot(*args) -> None:
            if not future.done():
                future.set_result(list(args))

        signal.connect(slot)
        try:
            action()
            return await future
        finally:
            signal.disconnect(slot)

    return arun(wait())


def test_history_survives_restart(tmp_path):
    path = history_path(tmp_path, "machine/1")
    history = History(path)
    history.add("print(1)")
    history.add("for i in range(3):\n    print(i)")
    history.add("for i in range(3):\n    print(i)")
    again = History(path)
    assert again.entries == ["print(1)", "for i in range(3):\n    print(i)"]
    assert again.previous("draft") == "for i in range(3):\n    print(i)"
    assert again.previous("") == "print(1)"
    assert again.previous("") is None
    assert again.next() == "for i in range(3):\n    print(i)"
    assert again.next() == "draft"
    assert path.parent.name == "history"
    assert "/" not in path.name


def test_history_drops_trailing_indent(tmp_path):
    path = history_path(tmp_path, "machine-1")
    history = History(path)
    history.add("for i in range(2):\n    if i:\n        print(i)\n        \n    ")
    history.add("x = 1   \n\n")
    history.add("for i in range(2):\n    if i:\n        print(i)")
    expected = [
        "for i in range(2):\n    if i:\n        print(i)",
        "x = 1",
        "for i in range(2):\n    if i:\n        print(i)",
    ]
    assert history.entries == expected
    assert History(path).entries == expected


def test_history_cleans_old_entries_on_load(tmp_path):
    path = history_path(tmp_path, "machine-1")
    path.parent.mkdir(parents=True)
    path.write_text('"for i in range(2):\\n    print(i)\\n    "\n"   "\n')
    assert History(path).entries == ["for i in range(2):\n    print(i)"]


def test_widget_run_stores_block_without_indent(qtbot):
    console = ConsoleWidget(History(None))
    qtbot.addWidget(console)
    qtbot.keyClicks(console, "for i in range(2):")
    qtbot.keyClick(console, Qt.Key_Return, Qt.ShiftModifier)
    qtbot.keyClicks(console, "print(i)")
    qtbot.keyClick(console, Qt.Key_Return, Qt.ShiftModifier)
    assert console.input_text() == "for i in range(2):\n    print(i)\n    "
    console.start_run()
    assert console.history.entries == ["for i in range(2):\n    print(i)"]


def test_widget_prompts_and_read_only_transcript(qtbot):
    console = ConsoleWidget()
    qtbot.addWidget(console)
    assert console.toPlainText() == ">>> "
    qtbot.keyClicks(console, "x = 1")
    assert console.input_text() == "x = 1"
    cursor = console.textCursor()
    cursor.setPosition(0)
    console.setTextCursor(cursor)
    qtbot.keyClicks(console, "y")
    assert console.toPlainText() == ">>> x = 1y"
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    qtbot.keyClick(console, Qt.Key_Backspace)
    assert console.toPlainText() == ">>> "


def test_widget_shift_enter_continues_with_indent(qtbot):
    console = ConsoleWidget()
    qtbot.addWidget(console)
    qtbot.keyClicks(console, "if True:")
    qtbot.keyClick(console, Qt.Key_Return, Qt.ShiftModifier)
    qtbot.keyClicks(console, "pass")
    assert console.toPlainText() == ">>> if True:\n...     pass"
    assert console.input_text() == "if True:\n    pass"


def test_widget_history_keys(qtbot):
    console = ConsoleWidget(History(None))
    qtbot.addWidget(console)
    console.history.add("first")
    console.history.add("second")
    qtbot.keyClick(console, Qt.Key_Up)
    assert console.input_text() == "second"
    qtbot.keyClick(console, Qt.Key_Up)
    assert console.input_text() == "first"
    qtbot.keyClick(console, Qt.Key_Down)
    qtbot.keyClick(console, Qt.Key_Down)
    assert console.input_text() == ""


def test_pane_runs_code_remotely(pane, qtbot, arun):
    console = pane.console
    args = emitted(
        arun,
        pane.runFinished,
        lambda: type_and_enter(qtbot, console, "import os; os.getpid()"),
    )
    assert args == [str(os.getpid()), ""]
    assert f"\n{os.getpid()}\n>>> " in console.toPlainText()
    assert console.history.entries[-1] == "import os; os.getpid()"


def test_pane_incomplete_input_continues(pane, qtbot, arun):
    console = pane.console
    type_and_enter(qtbot, console, "def f():")
    arun(wait_until(lambda: "... " in console.toPlainText()))
    assert console.toPlainText().endswith("...     ")
    qtbot.keyClicks(console, "return 5")
    qtbot.keyClick(console, Qt.Key_Return)
    arun(
        wait_until(lambda: console.toPlainText().endswith("...     return 5\n...     "))
    )
    console.set_input("def f():\n    return 5\n")
    emitted(arun, pane.runFinished, lambda: qtbot.keyClick(console, Qt.Key_Return))
    args = emitted(
        arun, pane.runFinished, lambda: type_and_enter(qtbot, console, "f()")
    )
    assert args == ["5", ""]


def test_pane_streams_output_before_the_end(pane, qtbot, arun):
    console = pane.console
    type_and_enter(
        qtbot, console, "import time\nprint('early')\ntime.sleep(1.5)\nprint('late')"
    )
    arun(wait_until(lambda: "early\n" in console.toPlainText()))
    assert console.running is True
    assert "late\n" not in console.toPlainText().split("early\n", 1)[1]
    arun(wait_until(lambda: not console.running))
    assert "early\nlate\n>>> " in console.toPlainText()


def test_pane_shows_stderr_and_traceback(pane, qtbot, arun):
    console = pane.console
    code = "import sys; sys.stderr.write('warn\\n'); 1/0"
    result, traceback_text = emitted(
        arun, pane.runFinished, lambda: type_and_enter(qtbot, console, code)
    )
    assert result == ""
    assert "ZeroDivisionError" in traceback_text
    text = console.toPlainText()
    assert "warn\nRemote traceback:\nTraceback" in text


def test_pane_ctrl_c_interrupts_busy_loop(pane, qtbot, arun):
    console = pane.console
    type_and_enter(qtbot, console, "while True: pass")
    arun(wait_until(lambda: pane.run_id is not None))
    args = emitted(
        arun,
        pane.runFinished,
        lambda: qtbot.keyClick(console, Qt.Key_C, Qt.ControlModifier),
    )
    assert "KeyboardInterrupt" in args[1]


def test_pane_completion_from_remote(pane, qtbot, arun):
    console = pane.console
    emitted(
        arun,
        pane.runFinished,
        lambda: type_and_enter(qtbot, console, "import collections"),
    )
    qtbot.keyClicks(console, "collections.OrderedD")
    qtbot.keyClick(console, Qt.Key_Tab)
    arun(wait_until(lambda: console.input_text() == "collections.OrderedDict"))
    console.set_input("collections.Or")
    qtbot.keyClick(console, Qt.Key_Tab)
    arun(wait_until(lambda: console.input_text() == "collections.OrderedDict"))
