"""The About dialog: version, the libraries underneath, and where files live."""

from __future__ import annotations

import importlib.metadata
import platform

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from rpyc_explorer.machines import paths

DISTRIBUTION = "rpyc-explorer"


def app_version() -> str:
    """Return the installed version of the rpyc-explorer distribution."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


class AboutDialog(QDialog):
    """Shows the application version and its environment."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About RPyC Explorer")
        text = (
            f"<h2>RPyC Explorer {app_version()}</h2>"
            "<p>Explore remote Python processes over SSH: modules and objects, files "
            "and a Python console, with nothing installed on the remote host.</p>"
            f"<p>Python {platform.python_version()} · Qt {qVersion()} · "
            f"PySide6 {PySide6.__version__}</p>"
            f"<p>Settings: <code>{paths.config_dir()}</code></p>"
            "<p>Icons: Material Design Icons (Apache License 2.0) through qtawesome "
            "(MIT).</p>"
        )
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)
