"""The modules and objects pane: the lazy object tree and a details view.

Browsing never runs properties (the service looks attributes up statically); the
Evaluate button runs one on request. "Send to console" binds the selected object to a
name in the remote console namespace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..models.objects_model import (
    SHOW_CALLABLES,
    SHOW_DUNDER,
    SHOW_PRIVATE,
    ItemRole,
    ObjectItem,
    ObjectsModel,
)
from ..models.paged_tree import error_message
from .paged_tree_view import PagedTreeView

log = logging.getLogger(__name__)

# The type column is sized to show this name (of every builtin function) in full.
LONG_TYPE_NAME = "builtin_function_or_method"


def format_details(item: ObjectItem, details: tuple) -> str:
    """Render ``(type, repr, doc, signature, source, file)`` as the details text."""
    type_name, shown, doc, signature, source, filename = details
    parts = [f"{item.dotted_name()}{signature}", f"Type: {type_name}"]
    if filename:
        parts.append(f"File: {filename}")
    parts += ["", "Value:", shown]
    if doc:
        parts += ["", "Docstring:", doc]
    if source:
        parts += ["", "Source:", source]
    return "\n".join(parts)


class ModulesPane(QWidget):
    """Browse remote modules and the console namespace."""

    # Emitted with (name, dotted path) after an object was bound in the console.
    sentToConsole = Signal(str, str)
    # Emitted with the details text once it is shown; tests wait on it.
    detailsShown = Signal(str)

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.model = ObjectsModel(session, self)
        self._tasks: set[asyncio.Task] = set()
        self._build()

    def _build(self) -> None:
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter modules")
        self.filter_edit.editingFinished.connect(self._apply_options)
        self.private_box = QCheckBox("_private", self)
        self.dunder_box = QCheckBox("__dunder__", self)
        self.callables_box = QCheckBox("callables", self)
        self.callables_box.setChecked(True)
        for box in (self.private_box, self.dunder_box, self.callables_box):
            box.toggled.connect(self._apply_options)
        options = QHBoxLayout()
        options.addWidget(self.filter_edit, 1)
        options.addWidget(self.private_box)
        options.addWidget(self.dunder_box)
        options.addWidget(self.callables_box)

        self.tree = PagedTreeView(self)
        self.tree.setModel(self.model)
        self.tree.header().resizeSection(0, 240)
        # Wide enough for the longest common type name; the value column takes the rest.
        type_width = self.tree.fontMetrics().horizontalAdvance(LONG_TYPE_NAME)
        self.tree.header().resizeSection(1, type_width + 24)
        self.tree.collapsed.connect(self.model.release)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)

        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setFont(QFont("monospace"))
        self.details.setPlaceholderText(
            "Select an object to see its type, value, docstring and source"
        )
        self.evaluate_button = QPushButton("Evaluate", self)
        self.evaluate_button.setToolTip(
            "Run this property's getter once and show its value"
        )
        self.evaluate_button.setEnabled(False)
        self.evaluate_button.clicked.connect(
            lambda: self._spawn(self.evaluate_current())
        )
        self.send_button = QPushButton("Send to console", self)
        self.send_button.setToolTip("Bind this object to a name in the remote console")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(
            lambda: self._spawn(self.send_current_to_console())
        )
        self.status = QLabel(self)
        actions = QHBoxLayout()
        actions.addWidget(self.status, 1)
        actions.addWidget(self.evaluate_button)
        actions.addWidget(self.send_button)
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.details, 1)
        right_layout.addLayout(actions)

        splitter = QSplitter(Qt.Horizontal, self)
        splitter.addWidget(self.tree)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(options)
        layout.addWidget(splitter, 1)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _apply_options(self) -> None:
        flags = (
            (SHOW_PRIVATE if self.private_box.isChecked() else 0)
            | (SHOW_DUNDER if self.dunder_box.isChecked() else 0)
            | (SHOW_CALLABLES if self.callables_box.isChecked() else 0)
        )
        self.model.set_options(
            flags=flags, module_filter=self.filter_edit.text().strip()
        )

    def refresh(self) -> None:
        """Reload every expanded branch from the remote side."""
        self.model.reset_children()

    def current_item(self) -> ObjectItem | None:
        index = self.tree.currentIndex()
        return index.siblingAtColumn(0).data(ItemRole) if index.isValid() else None

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        item = current.siblingAtColumn(0).data(ItemRole)
        self.evaluate_button.setEnabled(item is not None and item.kind == "property")
        self.send_button.setEnabled(
            item is not None and bool(item.path) and item.kind != "property"
        )
        if item is not None and item.path:
            self._spawn(self.show_details(item))

    async def show_details(self, item: ObjectItem) -> str:
        """Load and show the details of ``item``; return the text shown."""
        self.details.setPlainText("loading…")
        try:
            details, error = await self.session.call(
                "object_details", item.root, item.path
            )
        except Exception as exc:
            details, error = None, ("error", str(exc), "")
        if error is not None:
            text = f"{item.dotted_name()}: {error_message(error)}"
        else:
            text = format_details(item, tuple(details))
        if self.current_item() is item or self.current_item() is None:
            self.details.setPlainText(text)
        self.detailsShown.emit(text)
        return text

    async def evaluate_current(self) -> None:
        """Run the selected property once and show its value in its place."""
        index = self.tree.currentIndex().siblingAtColumn(0)
        item = index.data(ItemRole)
        if item is None:
            return
        try:
            row, error = await self.session.call("evaluate", item.root, item.path)
        except Exception as exc:
            row, error = None, ("error", str(exc), "")
        if error is not None:
            self.status.setText(f"Evaluate failed: {error_message(error)}")
            return
        self.model.replace_step(index, tuple(row[6]), tuple(row))
        self.status.setText(f"Evaluated {item.dotted_name()}")
        self.evaluate_button.setEnabled(False)
        self.send_button.setEnabled(True)
        await self.show_details(index.data(ItemRole))

    async def send_current_to_console(self) -> str:
        """Bind the selected object in the console namespace; return the name."""
        item = self.current_item()
        if item is None or not item.path:
            return ""
        # The object's own name when the console has no such variable yet.
        own_name = item.path[-1][1]
        try:
            name, error = await self.session.call(
                "send_to_console",
                item.root,
                item.path,
                own_name if isinstance(own_name, str) else "",
            )
        except Exception as exc:
            name, error = "", ("error", str(exc), "")
        if error is not None:
            self.status.setText(f"Send to console failed: {error[1]}")
            return ""
        self.status.setText(f"{item.dotted_name()} is {name} in the console")
        self.sentToConsole.emit(name, item.dotted_name())
        return name

    async def shutdown(self) -> None:
        await self.model.shutdown()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
