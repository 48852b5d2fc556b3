"""The remote files pane: tree, path bar, file actions, text preview and transfers.

The tree starts at the remote home directory and ``/``. Listing errors show as an error
row inside the directory; errors of actions (new folder, rename, delete) show in a
banner above the tree. Every remote call runs in an asyncio task.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import posixpath
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ..models.files_model import EntryRole, FilesModel, PathRole, format_size
from ..models.paged_tree import ERROR_COLOR, error_message
from ..transfers import Transfer, TransferQueue
from ..widgets.path_bar import PathBar
from .paged_tree_view import PagedTreeView
from .transfers_view import TransfersView

log = logging.getLogger(__name__)

PREVIEW_LIMIT = 256 * 1024
FILTER_PLACEHOLDER = "Filter: text or *.glob"


def conflict_text(transfer: Transfer) -> str:
    """Describe a transfer conflict: the target and the size and date of both files."""
    where = "on this computer" if transfer.direction == "download" else "remotely"
    lines = [f"{transfer.target} already exists {where}.", ""]
    for label, info in (
        ("Existing file", transfer.target_info),
        ("Incoming file", transfer.source_info),
    ):
        if info is None:
            continue
        size, mtime = info
        moment = datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{label}: {format_size(size)}, modified {moment}")
    return "\n".join(lines).rstrip()


class FilesPane(QWidget):
    """Browse and manage the remote machine's files."""

    # Emitted with a message after an action failed (also shown in the banner).
    actionFailed = Signal(str)
    # Emitted with the previewed path once a preview is shown.
    previewShown = Signal(str)

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.home = ""
        # The file the preview shows or is loading ("" when it shows nothing).
        self._preview_path = ""
        self._tasks: set[asyncio.Task] = set()
        self.model = FilesModel(session, self)
        style = self.style()
        self.model.set_icons(
            {
                "dir": style.standardIcon(QStyle.SP_DirIcon),
                "file": style.standardIcon(QStyle.SP_FileIcon),
                "link": style.standardIcon(QStyle.SP_FileLinkIcon),
                "other": style.standardIcon(QStyle.SP_FileIcon),
            }
        )
        self.queue = TransferQueue(session, self.ask_conflict, self)
        self.queue.finished.connect(self._on_transfer_finished)
        self._build()

    # -- layout -----------------------------------------------------------------

    def _build(self) -> None:
        self.path_bar = PathBar(self)
        self.path_bar.pathEntered.connect(self.go_to)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText(FILTER_PLACEHOLDER)
        self.filter_edit.setToolTip(
            "Show only names that contain this text, or match a glob such as *.conf "
            "(case-insensitive); press Enter to apply"
        )
        self.filter_edit.setMinimumWidth(
            self.filter_edit.fontMetrics().horizontalAdvance(FILTER_PLACEHOLDER) + 40
        )
        self.filter_edit.editingFinished.connect(self._apply_view_options)
        self.hidden_box = QCheckBox("Show hidden", self)
        self.hidden_box.toggled.connect(self._apply_view_options)

        buttons = QHBoxLayout()
        for label, slot, tip in (
            ("Home", self.show_home, "Show the remote home directory and /"),
            ("Refresh", self.refresh, "Reload the selected directory (F5)"),
            (
                "New folder",
                self.new_folder,
                "Create a folder in the selected directory",
            ),
            ("Rename", self.rename_selected, "Rename the selected entry"),
            ("Delete", self.delete_selected, "Delete the selected entry"),
            (
                "Upload…",
                self.upload_dialog,
                "Upload local files into the selected directory",
            ),
            ("Download…", self.download_dialog, "Download the selected files"),
        ):
            button = QPushButton(label, self)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.hidden_box)
        buttons.addWidget(self.filter_edit)

        self.banner = QLabel(self)
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(f"color: {ERROR_COLOR}; padding: 2px;")
        self.banner.hide()

        self.tree = PagedTreeView(self)
        self.tree.setModel(self.model)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(0, Qt.AscendingOrder)
        self.tree.setSelectionMode(QTreeView.ExtendedSelection)
        for column, width in enumerate((220, 75, 60, 125, 90, 70, 70, 160)):
            self.tree.header().resizeSection(column, width)
        self.tree.collapsed.connect(self.model.release)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)

        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a file to preview it")
        self.preview.setFont(QFont("monospace"))

        self.transfers = TransfersView(self.queue, self)
        side = QSplitter(Qt.Horizontal, self)
        side.addWidget(self.tree)
        side.addWidget(self.preview)
        side.setStretchFactor(0, 3)
        side.setStretchFactor(1, 2)
        main = QSplitter(Qt.Vertical, self)
        main.addWidget(side)
        main.addWidget(self.transfers)
        main.setStretchFactor(0, 4)
        main.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.path_bar)
        layout.addLayout(buttons)
        layout.addWidget(self.banner)
        layout.addWidget(main, 1)
        QShortcut(QKeySequence(QKeySequence.Delete), self.tree, self.delete_selected)
        QShortcut(QKeySequence("F2"), self.tree, self.rename_selected)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- navigation -------------------------------------------------------------

    async def start(self) -> None:
        """Load the remote home directory and show it with ``/``."""
        try:
            self.home = await self.session.call("home")
        except Exception as exc:
            self.home = "/"
            self.show_home()
            self.show_error(f"Cannot read the remote home directory: {exc}")
            return
        self.show_home()

    def show_home(self) -> None:
        """Show the remote home directory and ``/``."""
        roots = [self.home, "/"] if self.home and self.home != "/" else ["/"]
        self._clear_stale()
        self.model.set_roots(roots)
        self.tree.expand(self.model.index(0, 0))
        self.path_bar.set_path(roots[0])

    def go_to(self, path: str) -> None:
        """Show ``path`` as the only top-level directory and open it."""
        path = posixpath.normpath(path) if path.startswith("/") else path
        if path.startswith("~"):
            path = (
                posixpath.join(self.home, path[1:].lstrip("/")) if self.home else path
            )
        self._clear_stale()
        self.model.set_roots([path])
        self.tree.expand(self.model.index(0, 0))
        self.path_bar.set_path(path)

    def _clear_stale(self) -> None:
        # A new place in the tree: the old preview and the last error no longer apply.
        self.hide_error()
        self._preview_path = ""
        self.preview.clear()

    def focus_path_bar(self) -> None:
        """Focus the path bar; the window's Ctrl+L action calls this through the tab."""
        self.path_bar.focus()

    def refresh(self) -> None:
        """Reload the selected directory, or every top-level directory."""
        self.hide_error()
        directory = self.selected_directory_index()
        targets = (
            [directory]
            if directory.isValid()
            else [self.model.index(row, 0) for row in range(self.model.rowCount())]
        )
        for index in targets:
            if self.tree.isExpanded(index):
                self.model.reload(index)
            else:
                self.model.release(index)

    def _apply_view_options(self) -> None:
        self.model.set_view_options(
            show_hidden=self.hidden_box.isChecked(),
            sort_key=self.model.sort_key,
            pattern=self.filter_edit.text().strip(),
        )
        self.tree.expand(self.model.index(0, 0))

    # -- selection and preview --------------------------------------------------

    def selected_index(self) -> QModelIndex:
        index = self.tree.currentIndex()
        return index.siblingAtColumn(0) if index.isValid() else index

    def selected_directory_index(self) -> QModelIndex:
        """Return the selected directory, or the parent directory of a selected file."""
        index = self.selected_index()
        if not index.isValid() or index.data(EntryRole) is None:
            return QModelIndex()
        if index.data(EntryRole)[1] == "dir":
            return index
        return index.parent()

    def selected_directory(self) -> str:
        index = self.selected_directory_index()
        if index.isValid():
            return index.data(PathRole)
        return self.model.root_paths()[0] if self.model.root_paths() else "/"

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        entry = current.siblingAtColumn(0).data(EntryRole)
        if entry is None:
            return
        self.hide_error()
        path = current.siblingAtColumn(0).data(PathRole)
        self.path_bar.set_path(path if entry[1] == "dir" else posixpath.dirname(path))
        if entry[1] == "file":
            self._spawn(self.show_preview(path))

    async def show_preview(self, path: str) -> None:
        """Show the start of a remote text file (binary files get a note)."""
        self._preview_path = path
        self.preview.setPlainText("loading…")
        try:
            text, binary, size, truncated, error = await self.session.call(
                "preview", path, PREVIEW_LIMIT
            )
        except Exception as exc:
            if self._preview_path == path:
                self.preview.setPlainText(f"Preview failed: {exc}")
            return
        if self._preview_path != path:
            return  # the user moved on while the file was read
        if error is not None:
            self.preview.setPlainText(f"Cannot read {path}: {error_message(error)}")
        elif binary:
            self.preview.setPlainText(f"{path} is a binary file ({format_size(size)}).")
        else:
            limit, total = format_size(PREVIEW_LIMIT), format_size(size)
            note = f"\n\n[preview shows the first {limit} of {total}]"
            self.preview.setPlainText(text + (note if truncated else ""))
        self.previewShown.emit(path)

    # -- actions ----------------------------------------------------------------

    def ask_text(self, title: str, label: str, default: str = "") -> str | None:
        """Ask for one line of text; None when cancelled (tests replace this)."""
        text, accepted = QInputDialog.getText(self, title, label, text=default)
        return text.strip() if accepted and text.strip() else None

    def confirm(self, text: str) -> bool:
        """Ask a yes/no question; No is the default, so Enter does not destroy."""
        answer = QMessageBox.question(
            self, "Confirm", text, QMessageBox.Yes | QMessageBox.No, QMessageBox.No
        )
        return answer == QMessageBox.Yes

    async def ask_conflict(self, transfer: Transfer) -> str:
        """Ask whether to overwrite, skip or rename an existing transfer target."""
        box = QMessageBox(
            QMessageBox.Question, "File exists", conflict_text(transfer), parent=self
        )
        buttons = {
            box.addButton("Overwrite", QMessageBox.DestructiveRole): "overwrite",
            box.addButton("Skip", QMessageBox.RejectRole): "skip",
            box.addButton("Keep both (rename)", QMessageBox.AcceptRole): "rename",
        }
        future = asyncio.get_running_loop().create_future()
        box.finished.connect(
            lambda _result: (
                future.done()
                or future.set_result(buttons.get(box.clickedButton(), "skip"))
            )
        )
        box.open()
        return await future

    def new_folder(self) -> None:
        directory = self.selected_directory()
        name = self.ask_text("New folder", f"Name of the new folder in {directory}:")
        if name:
            self._spawn(
                self._run_action("mkdir", (posixpath.join(directory, name),), directory)
            )

    def rename_selected(self) -> None:
        index = self.selected_index()
        if not index.isValid() or index.data(EntryRole) is None:
            return
        path = index.data(PathRole)
        name = self.ask_text(
            "Rename", f"New name for {path}:", posixpath.basename(path)
        )
        if name and name != posixpath.basename(path):
            target = posixpath.join(posixpath.dirname(path), name)
            self._spawn(
                self._run_action("rename", (path, target), posixpath.dirname(path))
            )

    def delete_selected(self) -> None:
        index = self.selected_index()
        entry = index.data(EntryRole) if index.isValid() else None
        if entry is None:
            return
        path = index.data(PathRole)
        is_dir = entry[1] == "dir"
        target = f"the folder {path} and everything in it" if is_dir else path
        if self.confirm(f"Delete {target}? This cannot be undone."):
            self._spawn(
                self._run_action("delete", (path, is_dir), posixpath.dirname(path))
            )

    async def _run_action(self, name: str, args: tuple, directory: str) -> bool:
        self.hide_error()
        try:
            error = await self.session.call(name, *args)
        except Exception as exc:
            error = ("error", str(exc), args[0])
        if error is not None:
            self.show_error(f"{name} failed: {error_message(error)}: {error[2]}")
            return False
        self.reload_path(directory)
        return True

    def reload_path(self, directory: str) -> None:
        """Reload ``directory`` if it is loaded in the tree."""
        index = self.model.index_for_path(directory)
        if index.isValid():
            self.model.reload(index)
            self.tree.expand(index)

    # -- transfers --------------------------------------------------------------

    def upload_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Upload files")
        if paths:
            self.queue_upload(paths, self.selected_directory())

    def download_dialog(self) -> None:
        remote = [
            index.data(PathRole)
            for index in self.tree.selectionModel().selectedRows(0)
            if (index.data(EntryRole) or ("", ""))[1] == "file"
        ]
        if not remote:
            self.show_error("Select one or more files to download.")
            return
        directory = QFileDialog.getExistingDirectory(self, "Download into")
        if directory:
            self.queue_download(remote, directory)

    def queue_upload(self, local_paths: list[str], remote_dir: str) -> list[Transfer]:
        return [
            self.queue.upload(path, posixpath.join(remote_dir, os.path.basename(path)))
            for path in local_paths
        ]

    def queue_download(self, remote_paths: list[str], local_dir: str) -> list[Transfer]:
        return [
            self.queue.download(path, os.path.join(local_dir, posixpath.basename(path)))
            for path in remote_paths
        ]

    def _on_transfer_finished(self, transfer: Transfer) -> None:
        if transfer.state == "failed":
            self.show_error(
                f"{transfer.direction} of {transfer.target} failed: {transfer.error}"
            )
        if transfer.state == "done":
            self.hide_error()
        if transfer.direction == "upload" and transfer.state == "done":
            self.reload_path(posixpath.dirname(transfer.remote_path))

    # -- banner -----------------------------------------------------------------

    def show_error(self, message: str) -> None:
        self.banner.setText("⚠ " + message)
        self.banner.show()
        self.actionFailed.emit(message)

    def hide_error(self) -> None:
        self.banner.hide()

    async def shutdown(self) -> None:
        await self.queue.shutdown()
        await self.model.shutdown()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
