"""The main window's actions: text, icon, shortcut and tooltip in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from rpyc_explorer import icons

# name: (text, icon role, shortcut, tooltip)
_SPECS: dict[str, tuple[str, str, str, str]] = {
    "new_machine": ("&New machine…", "add", "Ctrl+N", "Add a machine"),
    "edit_machine": ("&Edit…", "edit", "", "Edit the selected machine"),
    "clone_machine": ("C&lone", "clone", "", "Copy the selected machine"),
    "delete_machine": ("&Delete…", "delete", "", "Delete the selected machine"),
    "import_ssh": ("&Import from SSH config…", "import", "",
                   "Add machines from ~/.ssh/config"),
    "forget_host_key": ("&Forget host key…", "forget-key", "",
                        "Remove the saved SSH host key of the selected machine"),
    "forget_password": ("Forget saved &password…", "key", "",
                        "Remove the machine's password or passphrase from the keyring"),
    "connect": ("&Connect", "connect", "", "Connect to the selected machine"),
    "disconnect": ("&Disconnect", "disconnect", "", "Close the machine's session"),
    "reconnect": ("&Reconnect", "reconnect", "", "Close and open the session again"),
    "refresh": ("&Refresh", "refresh", "F5", "Reload the current tab"),
    "focus_path": ("Go to &path", "", "Ctrl+L", "Move the focus to the path bar"),
    "close_tab": ("&Close tab", "close-tab", "Ctrl+W", "Close the tab and its session"),
    "show_log": ("Show &log", "log", "Ctrl+Shift+L", "Show the log pane"),
    "export_log": ("&Export log…", "export", "", "Save the log lines shown to a file"),
    "about": ("&About RPyC Explorer", "about", "F1", "Version and environment"),
    "quit": ("&Quit", "quit", "Ctrl+Q", "Close every session and quit"),
}  # fmt: skip


@dataclass
class WindowActions:
    """Every action of the main window, by name."""

    new_machine: QAction
    edit_machine: QAction
    clone_machine: QAction
    delete_machine: QAction
    import_ssh: QAction
    forget_host_key: QAction
    forget_password: QAction
    connect: QAction
    disconnect: QAction
    reconnect: QAction
    refresh: QAction
    focus_path: QAction
    close_tab: QAction
    show_log: QAction
    export_log: QAction
    about: QAction
    quit: QAction

    @classmethod
    def create(cls, parent: QWidget) -> WindowActions:
        """Create the actions with `parent` as owner (shortcuts work window-wide)."""
        created = {}
        for name, (text, role, shortcut, tip) in _SPECS.items():
            action = QAction(text, parent)
            action.setObjectName(name)
            if role:
                action.setIcon(icons.icon(role))
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                native = QKeySequence.SequenceFormat.NativeText
                tip = f"{tip} ({QKeySequence(shortcut).toString(native)})"
            action.setToolTip(tip)
            action.setStatusTip(tip)
            created[name] = action
        return cls(**created)

    def all(self) -> list[QAction]:
        """Return every action."""
        return [getattr(self, f.name) for f in fields(self)]

    def refresh_icons(self) -> None:
        """Redraw the icons (after the palette changed)."""
        for name, (_text, role, _shortcut, _tip) in _SPECS.items():
            if role:
                getattr(self, name).setIcon(icons.icon(role))
