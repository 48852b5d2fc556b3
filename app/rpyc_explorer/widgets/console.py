"""A Python console widget: prompts, editing, history, completion popup, output.

The widget makes no remote calls itself. It emits `executeRequested` when the
user presses Enter, `completionRequested` on Tab and `interruptRequested` on Ctrl+C
while code runs; the console pane answers with `continue_input`, `start_run`,
`append_output`, `finish_run` and `show_completions`.

Everything before the current prompt is read-only. The current input starts after the
last ``>>> `` prompt; continuation lines start with ``... ``, which `input_text` strips.
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QKeySequence,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QWidget

from .console_highlight import PythonHighlighter
from .console_history import History

PROMPT = ">>> "
CONTINUATION = "... "
INDENT = "    "
MAX_BLOCKS = 20000

STREAM_COLORS = {
    "stdout": None,
    "stderr": "#c0392b",
    "result": "#1f618d",
    "traceback": "#922b21",
    "note": "#7f8c8d",
}


class ConsoleWidget(QPlainTextEdit):
    """Editable prompt at the end of a read-only transcript."""

    # The full input (prompts stripped) when Enter is pressed without Shift.
    executeRequested = Signal(str)
    # The input text before the cursor, when Tab requests completions.
    completionRequested = Signal(str)
    # Ctrl+C while a run is in progress.
    interruptRequested = Signal()

    def __init__(
        self, history: History | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.history = history or History(None)
        self.running = False
        self._checking = False
        self._input_start = 0
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QPlainTextEdit.WidgetWidth)
        font = QFont("monospace")
        font.setStyleHint(QFont.TypeWriter)
        self.setFont(font)
        self._highlighter = PythonHighlighter(self.document())
        self._completer = QCompleter(self)
        self._completer.setWidget(self)
        self._completer.setCompletionMode(QCompleter.PopupCompletion)
        self._completer.setCaseSensitivity(Qt.CaseSensitive)
        self._completer.activated.connect(self._insert_completion)
        self._completion_start = 0
        self._write_prompt(PROMPT)

    # -- input ------------------------------------------------------------------

    def input_text(self) -> str:
        """Return the current input with the continuation prompts removed."""
        return _strip_continuations(self._text_from(self._input_start))

    def set_input(self, text: str) -> None:
        """Replace the current input (used by history navigation and tests)."""
        cursor = self._input_cursor()
        cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        cursor.insertText(text.replace("\n", "\n" + CONTINUATION), QTextCharFormat())
        self.setTextCursor(cursor)

    def continue_input(self) -> None:
        """Add a continuation line, indented like the previous line (plus one level
        after a colon)."""
        self._checking = False
        last = self.input_text().split("\n")[-1]
        indent = last[: len(last) - len(last.lstrip())]
        if last.rstrip().endswith(":"):
            indent += INDENT
        self._append_plain("\n" + CONTINUATION + indent)

    def start_run(self) -> None:
        """Freeze the input: it joins the transcript and output follows it."""
        self._checking = False
        self.running = True
        self.history.add(self.input_text())
        self._append_plain("\n")
        self._input_start = self._end()

    def append_output(self, text: str, stream: str = "stdout") -> None:
        """Append run output; ``stream`` picks the colour (see `STREAM_COLORS`)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(text, _char_format(stream))
        if self.running:
            self._input_start = self._end()
        self._scroll_to_end()

    def finish_run(self, result: str = "", traceback_text: str = "") -> None:
        """Show the result or the remote traceback, then a fresh prompt."""
        if result:
            self.append_output(result + "\n", "result")
        if traceback_text:
            self.append_output("Remote traceback:\n", "note")
            self.append_output(traceback_text, "traceback")
        self.running = False
        self._trim()
        self._write_prompt(PROMPT)

    def cancel_check(self) -> None:
        """Forget a pending Enter (the completeness check failed)."""
        self._checking = False

    # -- completion -------------------------------------------------------------

    def show_completions(self, start: int, candidates: list[str]) -> None:
        """Offer ``candidates`` for the input from offset ``start`` to the cursor."""
        before = self._text_before_cursor()
        if not candidates or start > len(before):
            return
        prefix = before[start:]
        self._completion_start = self.textCursor().position() - len(prefix)
        if len(candidates) == 1:
            self._insert_completion(candidates[0])
            return
        common = _common_prefix(candidates)
        if len(common) > len(prefix):
            self._insert_completion(common)
            prefix = common
        self._completer.setModel(QStringListModel(candidates, self._completer))
        self._completer.setCompletionPrefix(prefix)
        rect = self.cursorRect()
        rect.setWidth(self._completer.popup().sizeHintForColumn(0) + 24)
        self._completer.complete(rect)

    def _insert_completion(self, text: str) -> None:
        cursor = self.textCursor()
        cursor.setPosition(self._completion_start, QTextCursor.KeepAnchor)
        cursor.insertText(text)
        self.setTextCursor(cursor)

    # -- keys -------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key, modifiers = event.key(), event.modifiers()
        if self._completer.popup().isVisible() and key in (
            Qt.Key_Enter,
            Qt.Key_Return,
            Qt.Key_Escape,
            Qt.Key_Tab,
            Qt.Key_Backtab,
        ):
            event.ignore()
            return
        if event.matches(QKeySequence.Copy) and not self.textCursor().hasSelection():
            self._on_ctrl_c()
            return
        if event.matches(QKeySequence.Copy) or event.matches(QKeySequence.SelectAll):
            super().keyPressEvent(event)
            return
        if self.running or self._checking:
            return  # the input is frozen while code runs or Enter is being checked
        if self._handle_editing_key(key, modifiers):
            return
        self._move_into_input()
        super().keyPressEvent(event)

    def _handle_editing_key(self, key: int, modifiers: Qt.KeyboardModifier) -> bool:
        if key in (Qt.Key_Return, Qt.Key_Enter):
            if modifiers & Qt.ShiftModifier:
                self._move_to_end()
                self.continue_input()
            else:
                self._checking = True
                self.executeRequested.emit(self.input_text())
            return True
        if key == Qt.Key_Tab:
            before = self._text_before_cursor()
            if not before.split("\n")[-1].strip():
                self._move_into_input()
                self.textCursor().insertText(INDENT)
            else:
                self.completionRequested.emit(before)
            return True
        if key in (Qt.Key_Up, Qt.Key_Down) and self._on_history_key(key):
            return True
        if key == Qt.Key_Backspace:
            cursor = self.textCursor()
            if not cursor.hasSelection() and cursor.position() <= self._input_start:
                return True
            if self._at_continuation_start(cursor):
                return True
        if key == Qt.Key_Home:
            cursor = self.textCursor()
            target = cursor.block().position()
            if cursor.block().text().startswith((PROMPT, CONTINUATION)):
                target += len(PROMPT)
            if cursor.position() >= self._input_start:
                target = max(target, self._input_start)
            shift = modifiers & Qt.ShiftModifier
            cursor.setPosition(
                target, QTextCursor.KeepAnchor if shift else QTextCursor.MoveAnchor
            )
            self.setTextCursor(cursor)
            return True
        return False

    def _on_history_key(self, key: int) -> bool:
        cursor = self.textCursor()
        text = self.input_text()
        if key == Qt.Key_Up:
            if (
                cursor.blockNumber()
                != self.document().findBlock(self._input_start).blockNumber()
            ):
                return False
            entry = self.history.previous(text)
        else:
            if cursor.blockNumber() != self.document().blockCount() - 1:
                return False
            entry = self.history.next()
        if entry is not None:
            self.set_input(entry)
        return True

    def _on_ctrl_c(self) -> None:
        if self.running:
            self.interruptRequested.emit()
            return
        self._checking = False
        self._append_plain("\n")
        self.append_output("KeyboardInterrupt\n", "note")
        self._write_prompt(PROMPT)

    # -- helpers ----------------------------------------------------------------

    def _write_prompt(self, prompt: str) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        if cursor.positionInBlock() != 0:
            cursor.insertText("\n", QTextCharFormat())
        cursor.insertText(prompt, QTextCharFormat())
        self._input_start = cursor.position()
        self.setTextCursor(cursor)
        self._scroll_to_end()

    def _append_plain(self, text: str) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        cursor.insertText(text, QTextCharFormat())
        self.setTextCursor(cursor)

    def _input_cursor(self) -> QTextCursor:
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._input_start)
        return cursor

    def _end(self) -> int:
        return self.document().characterCount() - 1

    def _text_from(self, position: int) -> str:
        cursor = QTextCursor(self.document())
        cursor.setPosition(position)
        cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
        return cursor.selectedText().replace("\u2029", "\n")

    def _text_before_cursor(self) -> str:
        cursor = self.textCursor()
        position = max(cursor.position(), self._input_start)
        full = self._text_from(self._input_start)
        return _strip_continuations(full[: position - self._input_start])

    def _at_continuation_start(self, cursor: QTextCursor) -> bool:
        block = cursor.block()
        return (
            not cursor.hasSelection()
            and block.text().startswith(CONTINUATION)
            and cursor.positionInBlock() <= len(CONTINUATION)
            and block.position() > self._input_start
        )

    def _move_into_input(self) -> None:
        cursor = self.textCursor()
        if (
            cursor.selectionStart() < self._input_start
            or cursor.position() < self._input_start
        ):
            self._move_to_end()

    def _move_to_end(self) -> None:
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.End)
        self.setTextCursor(cursor)

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _trim(self) -> None:
        """Drop the oldest transcript lines beyond `MAX_BLOCKS` (between runs only)."""
        extra = self.document().blockCount() - MAX_BLOCKS
        if extra <= 0:
            return
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.Start)
        cursor.movePosition(QTextCursor.NextBlock, QTextCursor.KeepAnchor, extra)
        removed = cursor.selectionEnd()
        cursor.removeSelectedText()
        self._input_start = max(0, self._input_start - removed)


def _strip_continuations(raw: str) -> str:
    lines = raw.split("\n")
    rest = [
        line[len(CONTINUATION) :] if line.startswith(CONTINUATION) else line
        for line in lines[1:]
    ]
    return "\n".join([lines[0]] + rest)


def _char_format(stream: str) -> QTextCharFormat:
    fmt = QTextCharFormat()
    color = STREAM_COLORS.get(stream)
    if color:
        fmt.setForeground(QColor(color))
    if stream == "note":
        fmt.setFontItalic(True)
    return fmt


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    size = 0
    while size < len(first) and size < len(last) and first[size] == last[size]:
        size += 1
    return first[:size]
