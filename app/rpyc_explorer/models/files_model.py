"""The remote files tree: directory pages from the explorer service's ``list_dir``.

Each node's data is the service's entry tuple
``(name, kind, size, mtime, mode, owner, group, link_target)`` plus the full remote
path. One page of a directory is one remote call.
"""

from __future__ import annotations

import datetime
import posixpath
import stat
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtGui import QIcon

from .paged_tree import DISPLAY_ROLE, TOOLTIP_ROLE, Node, PagedTreeModel

COLUMNS = (
    "Name",
    "Size",
    "Type",
    "Modified",
    "Permissions",
    "Owner",
    "Group",
    "Link target",
)
SORT_KEYS = ("name", "size", "kind", "mtime", "mode", "owner", "group", "target")
KIND_LABELS = {"dir": "Folder", "file": "File", "link": "Link", "other": "Other"}

# Data roles beyond Qt's: the remote path and the raw entry tuple.
PathRole = Qt.UserRole + 1
EntryRole = Qt.UserRole + 2

_DECORATION_ROLE = int(Qt.ItemDataRole.DecorationRole)
_ALIGNMENT_ROLE = int(Qt.ItemDataRole.TextAlignmentRole)
_SIZE_ALIGNMENT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class FileEntry:
    """A file-system entry and its full remote path."""

    __slots__ = (
        "path",
        "name",
        "kind",
        "size",
        "mtime",
        "mode",
        "owner",
        "group",
        "target",
        "texts",
    )

    def __init__(self, path: str, entry: tuple) -> None:
        self.path = path
        # The column texts, formatted on the first paint of the row.
        self.texts: tuple[str, ...] | None = None
        (
            self.name,
            self.kind,
            self.size,
            self.mtime,
            self.mode,
            self.owner,
            self.group,
            self.target,
        ) = entry

    def as_tuple(self) -> tuple:
        return (
            self.name,
            self.kind,
            self.size,
            self.mtime,
            self.mode,
            self.owner,
            self.group,
            self.target,
        )


def format_size(size: int) -> str:
    """Format a byte count as B, KiB, MiB, GiB or TiB with one decimal."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            break
        value /= 1024
    else:  # pragma: no cover - the loop always breaks
        unit = "GiB"
    if value >= 1024:
        value, unit = value / 1024, "TiB"
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def format_entry(entry: FileEntry) -> tuple[str, ...]:
    """Format the text of every column of ``entry``, in `COLUMNS` order."""
    size = "" if entry.kind == "dir" else format_size(entry.size)
    modified = ""
    if entry.mtime:
        moment = datetime.datetime.fromtimestamp(entry.mtime)
        modified = moment.strftime("%Y-%m-%d %H:%M")
    return (
        entry.name,
        size,
        KIND_LABELS.get(entry.kind, entry.kind),
        modified,
        stat.filemode(entry.mode),
        entry.owner,
        entry.group,
        entry.target,
    )


class FilesModel(PagedTreeModel):
    """Lazy, paged tree of remote directories."""

    def __init__(self, session: Any, parent: QObject | None = None) -> None:
        super().__init__(COLUMNS, parent)
        self.session = session
        self.show_hidden = False
        self.sort_key = "name"
        self.pattern = ""
        self._icons: dict[str, QIcon] = {}

    def set_roots(self, paths: list[str]) -> None:
        """Show ``paths`` as the top-level directories, collapsed."""
        nodes = []
        for path in paths:
            entry = (path, "dir", 0, 0.0, stat.S_IFDIR | 0o755, "", "", "")
            nodes.append(Node(None, "item", FileEntry(path, entry), expandable=True))
        self.set_top_level(nodes)

    def root_paths(self) -> list[str]:
        return [child.data.path for child in self._root.children]

    def set_icons(self, icons: dict[str, QIcon]) -> None:
        """Set the decoration per kind (``dir``, ``file``, ``link``, ``other``)."""
        self._icons = dict(icons)

    def set_view_options(
        self, *, show_hidden: bool, sort_key: str, pattern: str
    ) -> None:
        """Change hidden files, sort order or name filter and reload every directory."""
        if (show_hidden, sort_key, pattern) == (
            self.show_hidden,
            self.sort_key,
            self.pattern,
        ):
            return
        self.show_hidden, self.sort_key, self.pattern = show_hidden, sort_key, pattern
        self.reset_children()

    def sort(self, column: int, order: Qt.SortOrder = Qt.AscendingOrder) -> None:
        key = SORT_KEYS[column] if 0 <= column < len(SORT_KEYS) else "name"
        if order == Qt.DescendingOrder:
            key = "-" + key
        self.set_view_options(
            show_hidden=self.show_hidden, sort_key=key, pattern=self.pattern
        )

    async def load_page(self, node: Node, offset: int, limit: int) -> tuple:
        return await self.session.call(
            "list_dir",
            node.data.path,
            offset,
            limit,
            self.show_hidden,
            self.sort_key,
            self.pattern,
        )

    def make_child(self, parent: Node, row: tuple) -> Node:
        entry = FileEntry(posixpath.join(parent.data.path, row[0]), tuple(row))
        return Node(parent, "item", entry, expandable=entry.kind == "dir")

    def node_key(self, node: Node) -> Any:
        return node.data.name if node.kind == "item" else None

    def node_data(self, node: Node, column: int, role: int) -> Any:
        entry: FileEntry = node.data
        if role == DISPLAY_ROLE:
            if entry.texts is None:
                entry.texts = format_entry(entry)
            return entry.texts[column]
        if role == PathRole:
            return entry.path
        if role == EntryRole:
            return entry.as_tuple()
        if column == 0:
            if role == _DECORATION_ROLE:
                return self._icons.get(entry.kind)
            if role == TOOLTIP_ROLE:
                return entry.path
        elif column == 1 and role == _ALIGNMENT_ROLE:
            return _SIZE_ALIGNMENT
        return None

    def find_child(self, parent_index: Any, name: str) -> Any:
        """Return the index of the loaded child ``name`` (invalid if not loaded)."""
        owner = self.node(parent_index)
        for child in owner.children:
            if child.kind == "item" and child.data.name == name:
                return self.index_of(child)
        return QModelIndex()

    def index_for_path(self, path: str) -> Any:
        """Return the index of the loaded directory or file at ``path`` (or invalid)."""
        path = posixpath.normpath(path)
        for row, top in enumerate(self._root.children):
            root = posixpath.normpath(top.data.path)
            if path == root:
                return self.index(row, 0)
            prefix = root.rstrip("/") + "/"
            if not path.startswith(prefix):
                continue
            index = self.index(row, 0)
            for name in path[len(prefix) :].split("/"):
                index = self.find_child(index, name)
                if not index.isValid():
                    break
            if index.isValid():
                return index
        return QModelIndex()
