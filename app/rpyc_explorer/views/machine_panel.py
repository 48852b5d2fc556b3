"""The side panel: machines in groups with a status light each.

"This computer" comes first, then one branch per group, then machines without a
group. Managed machines (from the site configuration) show a lock and cannot be
edited. The panel shows the store; the main window owns the actions.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem, QWidget

from rpyc_explorer import icons
from rpyc_explorer.icons import ConnectionState
from rpyc_explorer.machines.record import Machine

MACHINE_ID_ROLE = Qt.ItemDataRole.UserRole
GROUP_ROLE = Qt.ItemDataRole.UserRole + 1
UNGROUPED = ""


class MachinePanel(QTreeWidget):
    """A tree of group → machine with a status light per machine."""

    # Emitted on double-click or Enter on a machine; carries the machine id.
    activated_machine = Signal(str)
    # Emitted when the selection moves; carries the machine id or "".
    current_machine_changed = Signal(str)
    # Emitted on a right-click; carries the machine id ("" on empty space) and the
    # global position, so the window can show its context menu.
    context_menu_requested = Signal(str, QPoint)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setAllColumnsShowFocus(True)
        self.setExpandsOnDoubleClick(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._states: dict[str, ConnectionState] = {}
        self._collapsed_groups: set[str] = set()
        self.itemActivated.connect(self._on_activated)
        self.currentItemChanged.connect(self._on_current_changed)
        self.customContextMenuRequested.connect(self._on_context_menu)
        self.itemCollapsed.connect(self._remember_collapsed)
        self.itemExpanded.connect(self._remember_expanded)

    # -- contents ----------------------------------------------------------------------

    def set_machines(self, machines: list[Machine]) -> None:
        """Rebuild the tree from `machines`, keeping states, selection and folding."""
        current = self.current_machine_id()
        self.clear()
        self._items = {}
        groups: dict[str, QTreeWidgetItem] = {}
        ungrouped: list[Machine] = []
        for machine in machines:
            if machine.is_builtin:
                self.addTopLevelItem(self._machine_item(machine))
            elif machine.group:
                parent = groups.get(machine.group)
                if parent is None:
                    parent = self._group_item(machine.group)
                    groups[machine.group] = parent
                    self.addTopLevelItem(parent)
                parent.addChild(self._machine_item(machine))
            else:
                ungrouped.append(machine)
        for machine in ungrouped:
            self.addTopLevelItem(self._machine_item(machine))
        for name, item in groups.items():
            item.setExpanded(name not in self._collapsed_groups)
        if current in self._items:
            self.setCurrentItem(self._items[current])

    def _group_item(self, name: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([name, ""])
        item.setIcon(0, icons.icon("group"))
        item.setData(0, GROUP_ROLE, name)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        return item

    def _machine_item(self, machine: Machine) -> QTreeWidgetItem:
        item = QTreeWidgetItem([machine.name, ""])
        item.setData(0, MACHINE_ID_ROLE, machine.id)
        item.setToolTip(0, self._tooltip(machine))
        if machine.managed:
            item.setIcon(1, icons.icon("lock"))
            item.setToolTip(1, "Managed by the site configuration; clone it to edit")
        self._items[machine.id] = item
        self._paint_state(machine.id)
        return item

    @staticmethod
    def _tooltip(machine: Machine) -> str:
        if machine.kind == "local":
            return "This computer, through a local Python subprocess"
        kind = "RPyC server" if machine.kind == "rpyc" else "SSH"
        return f"{machine.name}\n{kind}: {machine.target}"

    # -- states ------------------------------------------------------------------------

    def set_state(self, machine_id: str, state: ConnectionState | str) -> None:
        """Show a machine's connection state on its status light."""
        self._states[machine_id] = ConnectionState(state)
        self._paint_state(machine_id)

    def state(self, machine_id: str) -> ConnectionState:
        """Return the state shown for a machine."""
        return self._states.get(machine_id, ConnectionState.DISCONNECTED)

    def _paint_state(self, machine_id: str) -> None:
        item = self._items.get(machine_id)
        if item is not None:
            item.setIcon(0, icons.status_icon(self.state(machine_id)))

    def refresh_icons(self) -> None:
        """Redraw every icon (after the palette changed)."""
        for index in range(self.topLevelItemCount()):
            item = self.topLevelItem(index)
            if item.data(0, GROUP_ROLE) is not None:
                item.setIcon(0, icons.icon("group"))
        for machine_id, item in self._items.items():
            self._paint_state(machine_id)
            if not item.icon(1).isNull():
                item.setIcon(1, icons.icon("lock"))

    # -- selection ---------------------------------------------------------------------

    def current_machine_id(self) -> str:
        """Return the selected machine's id, or "" for a group or no selection."""
        item = self.currentItem()
        if item is None:
            return ""
        return str(item.data(0, MACHINE_ID_ROLE) or "")

    def select_machine(self, machine_id: str) -> None:
        """Select a machine by id (does nothing for an unknown id)."""
        item = self._items.get(machine_id)
        if item is not None:
            self.setCurrentItem(item)

    def machine_item(self, machine_id: str) -> QTreeWidgetItem | None:
        """Return the tree item of a machine, for tests and drag and drop."""
        return self._items.get(machine_id)

    def _on_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        machine_id = item.data(0, MACHINE_ID_ROLE)
        if machine_id:
            self.activated_machine.emit(str(machine_id))
        else:
            item.setExpanded(not item.isExpanded())

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        machine_id = current.data(0, MACHINE_ID_ROLE) if current is not None else ""
        self.current_machine_changed.emit(str(machine_id or ""))

    def _on_context_menu(self, position: QPoint) -> None:
        item = self.itemAt(position)
        if item is not None:
            self.setCurrentItem(item)
        machine_id = self.current_machine_id() if item is not None else ""
        self.context_menu_requested.emit(
            machine_id, self.viewport().mapToGlobal(position)
        )

    def _remember_collapsed(self, item: QTreeWidgetItem) -> None:
        name = item.data(0, GROUP_ROLE)
        if name is not None:
            self._collapsed_groups.add(str(name))

    def _remember_expanded(self, item: QTreeWidgetItem) -> None:
        self._collapsed_groups.discard(str(item.data(0, GROUP_ROLE)))


def show_menu(menu: QMenu, position: QPoint) -> None:
    """Pop up a context menu without blocking (exec() would nest an event loop)."""
    menu.popup(position)
