"""A tree view that requests the next page of a `PagedTreeModel` branch on scrolling.

`PagedTreeModel.canFetchMore` covers only a branch's first page (see that module for
why), so this view requests later pages itself. After each scroll, resize, expansion
or arrived page it finds the row at the bottom of the viewport and calls
`PagedTreeModel.fetch_next` for each branch whose loaded rows end within one screen of
it. A branch that nobody scrolls through stays at its first page.

A new sort order or filter resets the model, which makes QTreeView forget what was
expanded. The view notes the expanded branches (by `PagedTreeModel.node_key` from the
top) before the reset and expands them again as their parents' pages arrive, so they
show their children in the new order.
"""

from __future__ import annotations

import logging

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPoint, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QTreeView, QWidget

from ..models.paged_tree import PagedTreeModel

log = logging.getLogger(__name__)


class PagedTreeView(QTreeView):
    """A QTreeView with uniform row heights that loads pages as the user scrolls."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Uniform rows let the view lay out and hit-test rows without asking the
        # model for every row's size hint.
        self.setUniformRowHeights(True)
        # A zero-interval single-shot timer merges the checks that one scroll step or
        # one inserted page would otherwise run several times.
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(0)
        self._check_timer.timeout.connect(self.load_visible_pages)
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._schedule_check)
        bar.rangeChanged.connect(self._schedule_check)
        self.expanded.connect(self._schedule_check)
        # Key paths of the branches to expand again after a reset, as their parents'
        # pages arrive. Any collapse clears it, so a closed branch stays closed.
        self._to_expand: set[tuple] = set()
        self.collapsed.connect(self._stop_restoring)

    def setModel(self, model: QAbstractItemModel | None) -> None:
        previous = self.model()
        if isinstance(previous, PagedTreeModel):
            previous.pageLoaded.disconnect(self._schedule_check)
            previous.pageLoaded.disconnect(self._restore_children)
            previous.modelAboutToBeReset.disconnect(self._remember_expanded)
            previous.modelReset.disconnect(self._restore_top_level)
        self._to_expand = set()
        super().setModel(model)
        if isinstance(model, PagedTreeModel):
            model.pageLoaded.connect(self._schedule_check)
            model.pageLoaded.connect(self._restore_children)
            model.modelAboutToBeReset.connect(self._remember_expanded)
            model.modelReset.connect(self._restore_top_level)

    # -- expanded branches across resets ----------------------------------------

    def _key_path(self, index: QModelIndex) -> tuple | None:
        model = self.model()
        keys: list[Any] = []
        while index.isValid():
            key = model.node_key(model.node(index))
            try:
                hash(key)
            except TypeError:
                return None
            if key is None:
                return None
            keys.append(key)
            index = index.parent()
        return tuple(reversed(keys))

    def _remember_expanded(self) -> None:
        model = self.model()
        found: set[tuple] = set()
        pending = [QModelIndex()]
        while pending:
            parent = pending.pop()
            for row in range(model.rowCount(parent)):
                index = model.index(row, 0, parent)
                if not self.isExpanded(index):
                    continue
                path = self._key_path(index)
                if path is not None:
                    found.add(path)
                    pending.append(index)
        self._to_expand = found

    def _restore_top_level(self) -> None:
        self._expand_remembered(QModelIndex())

    def _restore_children(self, parent: QModelIndex) -> None:
        if self._to_expand and parent.isValid():
            self._expand_remembered(parent)

    def _expand_remembered(self, parent: QModelIndex) -> None:
        model = self.model()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            path = self._key_path(index)
            if path in self._to_expand and not self.isExpanded(index):
                self._to_expand.discard(path)
                self.expand(index)
                # A view that is not laid out yet would fetch only when it is shown.
                model.fetchMore(index)

    def _stop_restoring(self, _index: QModelIndex) -> None:
        self._to_expand = set()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._schedule_check()

    def _schedule_check(self, *_args: object) -> None:
        self._check_timer.start()

    def load_visible_pages(self) -> int:
        """Request the next page of each branch whose loaded rows end near the bottom.

        Returns:
            How many page requests started.
        """
        model = self.model()
        if not isinstance(model, PagedTreeModel):
            return 0
        self.executeDelayedItemsLayout()
        viewport = self.viewport().rect()
        index = self.indexAt(QPoint(0, viewport.bottom())).siblingAtColumn(0)
        if not index.isValid():
            index = self._last_visible_row()  # the rows end above the bottom edge
        if not index.isValid():
            return 0
        # Prefetch while a screenful of loaded rows is still below the bottom edge,
        # so the next page usually arrives before the user reaches the end.
        margin = viewport.height() // max(1, self.rowHeight(index))
        requested = 0
        while index.isValid():
            parent = index.parent()
            rows_below = model.rowCount(parent) - 1 - index.row()
            if rows_below > margin:
                break
            if model.fetch_next(parent):
                requested += 1
            index = parent
        if requested:
            log.debug("requested %d page(s) for the rows in view", requested)
        return requested

    def _last_visible_row(self) -> QModelIndex:
        model = self.model()
        index = self.rootIndex()
        while model.rowCount(index) > 0 and (
            index == self.rootIndex() or self.isExpanded(index)
        ):
            index = model.index(model.rowCount(index) - 1, 0, index)
        return index if index != self.rootIndex() else QModelIndex()
