"""A lazy tree model whose children arrive in pages from asynchronous remote calls.

`PagedTreeModel` adapts pages of rows (one remote call each) to `QAbstractItemModel`.
Expanding a node makes the view call `fetchMore`, which starts one asyncio task for the
first page and shows a "loading…" row at the end of the node until the page arrives; the
GUI thread never waits. A page that fails becomes an error row in place. `release`
drops the children of a collapsed branch, so cached rows do not pile up.

`canFetchMore` is true only for a node's first page. QTreeView (PySide6 6.11) calls
`fetchMore` for each expanded node it lays out, and each inserted page makes it lay the
tree out again. A true `canFetchMore` for later pages would therefore load a large
directory page after page while nobody scrolls. Later pages come from `fetch_next`,
which a view calls when its viewport reaches the end of the loaded rows (see
`views.paged_tree_view`). At most one page per node is in flight.

Subclasses supply `load_page` (the remote call), `make_child` (a node from one row) and
`node_data` (what a cell shows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor

log = logging.getLogger(__name__)

PAGE_SIZE = 500
ERROR_COLOR = "#c0392b"

IndexLike = QModelIndex | QPersistentModelIndex

# Views call flags() and data() several times per row on every layout and paint, and
# looking members up on PySide6's Qt namespace costs microseconds per call, so the hot
# paths compare against these plain values.
DISPLAY_ROLE = int(Qt.ItemDataRole.DisplayRole)
TOOLTIP_ROLE = int(Qt.ItemDataRole.ToolTipRole)
FOREGROUND_ROLE = int(Qt.ItemDataRole.ForegroundRole)
_PLACEHOLDER_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
_BRANCH_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
# ItemNeverHasChildren lets QTreeView skip hasChildren() for leaves when it lays out.
_LEAF_FLAGS = _BRANCH_FLAGS | Qt.ItemFlag.ItemNeverHasChildren
_NO_FLAGS = Qt.ItemFlag.NoItemFlags
# The invalid index that stands for the top level; Qt passes it as the default parent.
_TOP = QModelIndex()


class Node:
    """One row of the tree: a loaded item, a "loading…" row or an error row."""

    __slots__ = (
        "parent",
        "row",
        "kind",
        "data",
        "children",
        "total",
        "loading",
        "expandable",
        "epoch",
        "loaded",
    )

    def __init__(
        self, parent: Node | None, kind: str, data: Any, expandable: bool = False
    ) -> None:
        self.parent = parent
        self.row = 0
        # "item" for real rows; "loading" and "error" for the placeholder rows.
        self.kind = kind
        self.data = data
        self.children: list[Node] = []
        self.total: int | None = None
        self.loading = False
        self.expandable = expandable
        # Bumped when the children are released, so a page requested before that is
        # dropped when it arrives.
        self.epoch = 0
        # How many children are items; the placeholder rows only ever follow them.
        self.loaded = 0

    def loaded_items(self) -> int:
        """Return how many children are loaded items (not placeholder rows)."""
        return self.loaded

    def has_more(self) -> bool:
        """Return whether the remote side has children that are not loaded yet."""
        if self.kind != "item" or not self.expandable:
            return False
        return self.total is None or self.loaded < self.total

    def drop_children(self) -> None:
        """Forget the loaded children and any page still in flight."""
        self.children = []
        self.loaded = 0
        self.total = None
        self.loading = False
        self.epoch += 1


class PagedTreeModel(QAbstractItemModel):
    """Base model: lazy, paged, asynchronous children."""

    # Emitted when a page finished loading (the node's index, or an invalid index for
    # the top level); tests and views wait on it.
    pageLoaded = Signal(QModelIndex)
    # Emitted with a message when a page failed; the row also shows it in place.
    pageFailed = Signal(QModelIndex, str)

    def __init__(self, headers: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._headers = list(headers)
        self._root = Node(None, "root", None, expandable=True)
        self._tasks: set[asyncio.Task] = set()
        self.page_size = PAGE_SIZE
        self.pages_requested = 0

    # -- subclass hooks ---------------------------------------------------------

    async def load_page(self, node: Node, offset: int, limit: int) -> tuple:
        """Return ``(rows, total, error)`` for one page of ``node``'s children."""
        raise NotImplementedError

    def make_child(self, parent: Node, row: tuple) -> Node:
        raise NotImplementedError

    def node_data(self, node: Node, column: int, role: int) -> Any:
        raise NotImplementedError

    def node_key(self, node: Node) -> Any:
        """Return what identifies ``node`` among its siblings across reloads.

        Views use it to expand the same branches again after `reset_children`;
        None (the default) means the branch is not restored.
        """
        return None

    # -- structure --------------------------------------------------------------

    def node(self, index: IndexLike) -> Node:
        """Return the node behind ``index`` (the hidden root for an invalid index)."""
        if not index.isValid():
            return self._root
        return index.internalPointer()

    def index_of(self, node: Node) -> QModelIndex:
        if node is self._root or node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, 0, node)

    def index(
        self, row: int, column: int, parent: IndexLike = _TOP
    ) -> QModelIndex:
        # QTreeView calls this for every row on each layout, so it stays inline.
        owner = parent.internalPointer() if parent.isValid() else self._root
        children = owner.children
        if 0 <= row < len(children) and 0 <= column < len(self._headers):
            return self.createIndex(row, column, children[row])
        return QModelIndex()

    def parent(self, index: IndexLike = _TOP) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        owner = self.node(index).parent
        if owner is None or owner is self._root:
            return QModelIndex()
        return self.createIndex(owner.row, 0, owner)

    def rowCount(self, parent: IndexLike = _TOP) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self.node(parent).children)

    def columnCount(self, parent: IndexLike = _TOP) -> int:
        return len(self._headers)

    def hasChildren(self, parent: IndexLike = _TOP) -> bool:
        if parent.isValid() and parent.column() != 0:
            return False
        owner = self.node(parent)
        if owner.children:
            return True
        return owner.kind in ("item", "root") and owner.expandable

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.DisplayRole
    ) -> Any:
        if (
            orientation == Qt.Horizontal
            and role == Qt.DisplayRole
            and 0 <= section < len(self._headers)
        ):
            return self._headers[section]
        return None

    def flags(self, index: IndexLike) -> Qt.ItemFlag:
        if not index.isValid():
            return _NO_FLAGS
        node = index.internalPointer()
        if node.kind != "item":
            return _PLACEHOLDER_FLAGS
        return _BRANCH_FLAGS if node.expandable else _LEAF_FLAGS

    def data(self, index: IndexLike, role: int = DISPLAY_ROLE) -> Any:
        if not index.isValid():
            return None
        node = index.internalPointer()
        if node.kind == "item":
            return self.node_data(node, index.column(), role)
        if node.kind == "loading":
            if role == DISPLAY_ROLE and index.column() == 0:
                return "loading…"
            return None
        if role in (DISPLAY_ROLE, TOOLTIP_ROLE) and index.column() == 0:
            return node.data
        if role == FOREGROUND_ROLE:
            return QBrush(QColor(ERROR_COLOR))
        return None

    # -- paging -----------------------------------------------------------------

    def canFetchMore(self, parent: IndexLike) -> bool:
        # Only a branch's first page is fetchable here, because later pages come from
        # fetch_next (see the module docstring). The top level is never fetched.
        owner = self.node(parent)
        return owner.total is None and not owner.loading and owner.has_more()

    def fetchMore(self, parent: IndexLike) -> None:
        if self.canFetchMore(parent):
            self._start_page(self.node(parent))

    def has_more(self, parent: IndexLike) -> bool:
        """Return whether ``parent`` has children on the remote side not loaded yet."""
        return self.node(parent).has_more()

    def fetch_next(self, parent: IndexLike) -> bool:
        """Request the next page of ``parent``'s children.

        A view calls this when its viewport reaches the last loaded row of ``parent``.

        Returns:
            True if a page request started; False if every child is loaded, the
            branch failed, or a page of ``parent`` is still in flight.
        """
        owner = self.node(parent)
        if owner.loading or not owner.has_more():
            return False
        self._start_page(owner)
        return True

    def _start_page(self, owner: Node) -> None:
        owner.loading = True
        self.pages_requested += 1
        task = asyncio.ensure_future(self._fetch(owner, owner.loaded, owner.epoch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, owner: Node, offset: int, epoch: int) -> None:
        # Views and QAbstractItemModelTester call fetchMore while they handle a model
        # signal, so the model changes only from here, in a later loop iteration.
        await asyncio.sleep(0)
        if epoch != owner.epoch or not self._attached(owner):
            return
        self._append(owner, [Node(owner, "loading", None)])
        await _until_loop_runs()
        try:
            rows, total, error = await self.load_page(owner, offset, self.page_size)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a lost connection or a remote bug: show it in place
            log.warning("loading a page at offset %d failed: %s", offset, exc)
            rows, total, error = (), 0, ("error", str(exc), "")
        if epoch != owner.epoch or not self._attached(owner):
            return  # the branch was released or the model reset meanwhile
        self._apply_page(owner, rows, total, error)

    def _apply_page(
        self, owner: Node, rows: Sequence[tuple], total: int, error: Any
    ) -> None:
        # `loading` stays true until the rows are in: the signals below make testers
        # and views call fetchMore, which must not start the same page again.
        self._remove_placeholders(owner)
        index = self.index_of(owner)
        if error is not None:
            owner.total = 0
            message = error_text(error)
            self._append(owner, [Node(owner, "error", message)])
            owner.loading = False
            self.pageFailed.emit(index, message)
            return
        children = [self.make_child(owner, row) for row in rows]
        owner.total = int(total) if children else owner.loaded
        self._append(owner, children)
        owner.loaded += len(children)
        owner.loading = False
        self.pageLoaded.emit(index)

    def _attached(self, node: Node) -> bool:
        while node.parent is not None:
            parent = node.parent
            if (
                node.row >= len(parent.children)
                or parent.children[node.row] is not node
            ):
                return False
            node = parent
        return node is self._root

    def _append(self, owner: Node, nodes: list[Node]) -> None:
        # NOTE: QTreeView lays out every row of an expanded branch again after each
        # insert, calling index() and flags() per row, so a page appended to a branch
        # still costs time in proportion to the rows already loaded there.
        if not nodes:
            return
        first = len(owner.children)
        self.beginInsertRows(self.index_of(owner), first, first + len(nodes) - 1)
        for offset, child in enumerate(nodes):
            child.row = first + offset
        owner.children.extend(nodes)
        self.endInsertRows()

    def _remove_placeholders(self, owner: Node) -> None:
        # Placeholders only ever sit after the loaded items, so rows above them keep
        # their numbers.
        first = owner.loaded
        last = len(owner.children) - 1
        if last < first:
            return
        self.beginRemoveRows(self.index_of(owner), first, last)
        del owner.children[first:]
        self.endRemoveRows()

    def release(self, index: IndexLike) -> None:
        """Drop the cached children of ``index``; expanding it again reloads them."""
        owner = self.node(index)
        if owner.children:
            self.beginRemoveRows(self.index_of(owner), 0, len(owner.children) - 1)
            owner.drop_children()
            self.endRemoveRows()
        else:
            owner.drop_children()

    def reload(self, index: IndexLike) -> None:
        """Release the children of ``index`` and fetch their first page again."""
        self.release(index)
        self.fetchMore(index)

    def set_top_level(self, nodes: list[Node]) -> None:
        """Replace the top-level nodes (resets the model)."""
        self.beginResetModel()
        self._root.epoch += 1
        for position, child in enumerate(nodes):
            child.parent = self._root
            child.row = position
        self._root.children = list(nodes)
        self._root.total = self._root.loaded = len(nodes)
        self._root.loading = False
        self.endResetModel()

    def reset_children(self) -> None:
        """Forget every page below the top level (sort, filter or toggles changed)."""
        self.beginResetModel()
        for child in self._root.children:
            child.drop_children()
        self.endResetModel()

    async def shutdown(self) -> None:
        """Cancel the page loads still in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def _until_loop_runs(max_yields: int = 1000) -> None:
    """Yield until the asyncio loop runs.

    qasync runs task steps from Qt timers, so a plain ``processEvents()`` call outside
    ``run_forever`` (pytest-qt makes them between test phases) can step a task while
    no loop is running, and ``get_running_loop()`` then fails in the remote call.
    """
    for _ in range(max_yields):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            await asyncio.sleep(0)  # sleep(0) only yields, so it needs no running loop
        else:
            return


def error_message(error: Sequence[Any]) -> str:
    """Return the human message of a service error tuple ``(code, message, path)``.

    The code (such as ``permission-denied``) is for callers' logic, so it shows
    only when the message is empty.
    """
    code, message = (list(error) + ["", ""])[:2]
    return str(message) if message else str(code)


def error_text(error: Sequence[Any]) -> str:
    """Render a service error tuple ``(code, message, path)`` for an error row."""
    path = error[2] if len(error) > 2 else ""
    text = error_message(error)
    return f"⚠ {text}: {path}" if path else f"⚠ {text}"
