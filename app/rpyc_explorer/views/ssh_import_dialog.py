"""Lists the hosts found in ~/.ssh/config with a checkbox each, to import them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rpyc_explorer.machines.record import Machine


class SshImportDialog(QDialog):
    """Offers machines parsed from an OpenSSH config file for import.

    Hosts whose alias is already the name of a saved machine start unchecked.

    Args:
        candidates: one machine per `Host` entry, not yet stored.
        existing_names: names of the machines already saved.
        source: the file the candidates came from, for the message.
        parent: the parent window.
    """

    def __init__(
        self,
        candidates: list[Machine],
        existing_names: set[str],
        source: str = "~/.ssh/config",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import from SSH config")
        self._candidates = list(candidates)
        if candidates:
            message = (
                f"{len(candidates)} host(s) found in {source}. "
                "Checked hosts are added as machines."
            )
        else:
            message = f"No hosts found in {source} (wildcard entries are skipped)."
        self.message_label = QLabel(message, self)
        self.message_label.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Host", "Connects to", "Jump host"])
        self.tree.setRootIsDecorated(False)
        for machine in self._candidates:
            item = QTreeWidgetItem([machine.name, machine.target, machine.jump_host])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            exists = machine.name in existing_names
            item.setCheckState(
                0, Qt.CheckState.Unchecked if exists else Qt.CheckState.Checked
            )
            if exists:
                item.setToolTip(0, "A machine with this name is already saved")
            self.tree.addTopLevelItem(item)
        for column in range(3):
            self.tree.resizeColumnToContents(column)

        self.all_button = QPushButton("Select all", self)
        self.none_button = QPushButton("Select none", self)
        self.all_button.clicked.connect(lambda: self._check_all(Qt.CheckState.Checked))
        self.none_button.clicked.connect(
            lambda: self._check_all(Qt.CheckState.Unchecked)
        )
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
            self,
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.tree.itemChanged.connect(self._update_ok)

        row = QHBoxLayout()
        row.addWidget(self.all_button)
        row.addWidget(self.none_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message_label)
        layout.addWidget(self.tree)
        layout.addLayout(row)
        layout.addWidget(self.buttons)
        self.resize(620, 420)
        self._update_ok()

    def _check_all(self, state: Qt.CheckState) -> None:
        for index in range(self.tree.topLevelItemCount()):
            self.tree.topLevelItem(index).setCheckState(0, state)

    def _update_ok(self) -> None:
        self.ok_button.setEnabled(bool(self.selected()))

    def selected(self) -> list[Machine]:
        """Return the checked machines, in file order."""
        chosen = []
        for index, machine in enumerate(self._candidates):
            if self.tree.topLevelItem(index).checkState(0) == Qt.CheckState.Checked:
                chosen.append(machine)
        return chosen
