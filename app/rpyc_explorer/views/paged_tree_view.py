"""A tree view that requests the next page of a `PagedTreeModel` branch on scrolling.

`PagedTreeModel.canFetchMore` covers only a branch's first page (see that module for
why), so this view requests later pages itself. After each scroll, resize, expansion
or arrived page it finds the row at the bottom of the viewport and calls
`PagedTreeModel.fetch_next` for each branch whose loaded rows end within one screen of
it. A branch that nobody scrolls through stays at its first page.
"""

from __future__ import annotations

import logging

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

    def setModel(self, model: QAbstractItemModel | None) -> None:
        previous = self.model()
        if isinstance(previous, PagedTreeModel):
            previous.pageLoaded.disconnect(self._schedule_check)
        super().setModel(model)
        if isinstance(model, PagedTreeModel):
            model.pageLoaded.connect(self._schedule_check)

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
