"""Python syntax highlighting for console input lines, from pygments tokens."""

from __future__ import annotations

from pygments.lexers import PythonLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, String, Token
from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)

PROMPTS = (">>> ", "... ")

_STYLE = (
    (Keyword, "#8e44ad", True),
    (Name.Builtin, "#2980b9", False),
    (Name.Function, "#16a085", False),
    (Name.Class, "#16a085", True),
    (String, "#c0392b", False),
    (Number, "#d35400", False),
    (Comment, "#7f8c8d", False),
    (Operator.Word, "#8e44ad", True),
)


def _format(color: str, bold: bool) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Bold)
    return fmt


class PythonHighlighter(QSyntaxHighlighter):
    """Colours the lines that start with a console prompt; output stays untouched.

    NOTE: each line is lexed on its own, so a triple-quoted string spanning lines is
    coloured only on its first line.
    """

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self._lexer = PythonLexer(stripnl=False, ensurenl=False)
        self._formats = [(token, _format(color, bold)) for token, color, bold in _STYLE]
        self._prompt = _format("#7f8c8d", True)

    def _format_for(self, token: object) -> QTextCharFormat | None:
        for kind, fmt in self._formats:
            if token in kind:
                return fmt
        return None

    def highlightBlock(self, text: str) -> None:
        if not text.startswith(PROMPTS):
            return
        self.setFormat(0, 4, self._prompt)
        position = 4
        for token, value in self._lexer.get_tokens(text[4:]):
            fmt = self._format_for(token) if token is not Token.Text else None
            if fmt is not None:
                self.setFormat(position, len(value), fmt)
            position += len(value)
