"""Stand-ins for the window tests that cover tab handling, which need no deploy."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from PySide6.QtWidgets import QLabel
from rpyc_explorer.app import create_window


def make_window(qtbot, parts, **kwargs):
    """Create, show and activate the main window (window shortcuts need focus)."""
    window = create_window(**parts, **kwargs)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    return window


class FakeSession:
    """Stands in for a RemoteSession; counts its close calls."""

    def __init__(self, machine):
        self.machine = machine
        self.closed_calls = 0

    async def close(self):
        self.closed_calls += 1
        return []


async def fake_connector(machine, reporter):
    """Connect at once, walking through the phases of a deploy."""
    for phase in ("finding-python", "uploading", "starting", "handshake"):
        reporter.phase(phase)
        await asyncio.sleep(0)
    return FakeSession(machine)


class BusyTab(QLabel):
    """A connected tab whose console reports that it is running code."""

    def __init__(self, session, parent):
        super().__init__(f"connected to {session.machine.name}", parent)
        self.console_pane = SimpleNamespace(console=SimpleNamespace(running=False))
