"""The modules and objects tree: pages from the explorer service's ``object_page``.

Two top-level nodes: the remote ``sys.modules`` and the console namespace. A node's data
is an `ObjectItem`: the root name, the path of steps from that root, and the row the
service returned ``(name, kind, type_name, short_repr, has_children, callable, step)``.
Browsing never runs properties: the service looks attributes up statically.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QFont

from .paged_tree import DISPLAY_ROLE, TOOLTIP_ROLE, Node, PagedTreeModel

COLUMNS = ("Name", "Type", "Value")
SHOW_PRIVATE = 1
SHOW_DUNDER = 2
SHOW_CALLABLES = 4

# Data role beyond Qt's: the ObjectItem.
ItemRole = Qt.UserRole + 1

_FONT_ROLE = int(Qt.ItemDataRole.FontRole)


class ObjectItem:
    """An object's remote location (root and path) and the row the tree shows for it."""

    __slots__ = ("root", "path", "name", "kind", "type_name", "text", "callable")

    def __init__(self, root: str, path: tuple, row: tuple) -> None:
        self.root = root
        self.path = path
        self.name, self.kind, self.type_name, self.text, _, self.callable, _ = row

    def dotted_name(self) -> str:
        """Return a readable name such as ``os.path.join`` or ``d['k'][0]``."""
        text = "sys.modules" if self.root == "modules" else "console"
        for position, (kind, key) in enumerate(self.path):
            if kind in ("attr", "value"):
                text += "." + key
            elif position == 0:
                text = str(key)
            elif kind == "key":
                text += f"[{key!r}]"
            else:
                text += f"[#{key}]"
        return text


class ObjectsModel(PagedTreeModel):
    """Lazy, paged tree of remote modules and console objects."""

    def __init__(self, session: Any, parent: QObject | None = None) -> None:
        super().__init__(COLUMNS, parent)
        self.session = session
        self.flags_mask = SHOW_CALLABLES
        self.module_filter = ""
        # Made on first use, when a QGuiApplication surely exists.
        self._italic: QFont | None = None
        roots = [
            (
                "modules",
                ("sys.modules", "root", "dict", "loaded modules", True, False, None),
            ),
            ("console", ("console namespace", "root", "dict", "", True, False, None)),
        ]
        self.set_top_level(
            [
                Node(None, "item", ObjectItem(root, (), row), expandable=True)
                for root, row in roots
            ]
        )

    def set_options(self, *, flags: int, module_filter: str) -> None:
        """Change the private/dunder/callable toggles or the module filter; reload."""
        if (flags, module_filter) == (self.flags_mask, self.module_filter):
            return
        self.flags_mask, self.module_filter = flags, module_filter
        self.reset_children()

    def top_index(self, root: str) -> Any:
        for child in self._root.children:
            if child.data.root == root:
                return self.index_of(child)
        raise KeyError(f"no top-level node {root!r}; expected 'modules' or 'console'")

    async def load_page(self, node: Node, offset: int, limit: int) -> tuple:
        item: ObjectItem = node.data
        module_root = item.root == "modules" and not item.path
        return await self.session.call(
            "object_page",
            item.root,
            item.path,
            offset,
            limit,
            self.flags_mask,
            self.module_filter if module_root else "",
        )

    def make_child(self, parent: Node, row: tuple) -> Node:
        item: ObjectItem = parent.data
        child = ObjectItem(item.root, item.path + (tuple(row[6]),), row)
        return Node(parent, "item", child, expandable=bool(row[4]))

    def replace_step(self, index: Any, step: tuple, row: tuple) -> None:
        """Point ``index`` at an evaluated value (``step``) and show ``row`` for it."""
        node = self.node(index)
        item: ObjectItem = node.data
        node.data = ObjectItem(item.root, item.path[:-1] + (tuple(step),), row)
        node.expandable = bool(row[4])
        self.release(index)
        last = self.index(index.row(), len(COLUMNS) - 1, index.parent())
        self.dataChanged.emit(self.index_of(node), last)

    def node_key(self, node: Node) -> Any:
        if node.kind != "item":
            return None
        item: ObjectItem = node.data
        return item.path[-1] if item.path else item.root

    def node_data(self, node: Node, column: int, role: int) -> Any:
        item: ObjectItem = node.data
        if role == DISPLAY_ROLE:
            return (item.name, item.type_name, item.text)[column]
        if role == ItemRole:
            return item
        if role == TOOLTIP_ROLE:
            return item.dotted_name() if column == 0 else item.text
        if role == _FONT_ROLE and item.kind == "property":
            if self._italic is None:
                self._italic = QFont()
                self._italic.setItalic(True)
            return self._italic
        return None
