"""The transfers list: one row per queued file with progress, speed and state."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..models.files_model import format_size
from ..transfers import Transfer, TransferQueue

COLUMNS = ("File", "Direction", "Progress", "Speed", "State")
# Texts as wide as the widest usual cells, so the columns start wide enough for them.
WIDEST_CELLS = (
    "a-longer-file-name.tar.gz",
    "↓ download",
    "100 %  (999.9 MiB of 999.9 MiB)",
    "999.9 MiB/s",
)


class TransfersView(QWidget):
    """List of a `TransferQueue`'s transfers; Cancel stops the selected ones."""

    def __init__(self, queue: TransferQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QTreeWidget.ExtendedSelection)
        metrics = self.tree.fontMetrics()
        for column, text in enumerate(WIDEST_CELLS):
            self.tree.header().resizeSection(column, metrics.horizontalAdvance(text) + 24)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.clear_button = QPushButton("Clear finished", self)
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self._items: dict[str, QTreeWidgetItem] = {}
        queue.changed.connect(self.update_transfer)

    def update_transfer(self, transfer: Transfer) -> None:
        item = self._items.get(transfer.id)
        if item is None:
            item = QTreeWidgetItem(self.tree)
            item.setData(0, Qt.UserRole, transfer.id)
            self._items[transfer.id] = item
        item.setText(0, os.path.basename(transfer.target.rstrip("/")))
        item.setToolTip(0, f"{transfer.local_path} ⇄ {transfer.remote_path}")
        item.setText(1, "↑ upload" if transfer.direction == "upload" else "↓ download")
        percent = int(100 * transfer.done / transfer.size) if transfer.size else 0
        if transfer.state == "done":
            percent = 100
        item.setText(
            2,
            f"{percent} %  "
            f"({format_size(transfer.done)} of {format_size(transfer.size)})",
        )
        item.setText(
            3, f"{format_size(int(transfer.speed()))}/s" if transfer.done else ""
        )
        item.setText(
            4, transfer.state + (f": {transfer.error}" if transfer.error else "")
        )

    def cancel_selected(self) -> None:
        ids = {item.data(0, Qt.UserRole) for item in self.tree.selectedItems()}
        for transfer in self.queue.transfers:
            if transfer.id in ids:
                self.queue.cancel(transfer)

    def clear_finished(self) -> None:
        for transfer in list(self.queue.transfers):
            if transfer.state not in ("queued", "running"):
                item = self._items.pop(transfer.id, None)
                if item is not None:
                    self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
                self.queue.transfers.remove(transfer)
