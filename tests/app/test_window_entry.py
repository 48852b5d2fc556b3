"""Entry points: `rpyc-explorer --version`, `--smoke`, and the log pane wiring."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest
from rpyc_explorer.app import install_pane_handler, remove_pane_handler
from rpyc_explorer.views.about_dialog import app_version
from rpyc_explorer.widgets.log_pane import LogPane


def run_module(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-m", "rpyc_explorer", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def test_entry_version():
    result = run_module("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rpyc-explorer {app_version()}"


@pytest.mark.gui
def test_entry_smoke_connects_and_exits():
    result = run_module("--smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke: connected to this computer" in result.stdout
    assert result.stdout.strip().endswith("smoke: ok")


class _WindowStub:
    """Carries only the log pane, which is all install_pane_handler touches."""

    def __init__(self, pane: LogPane) -> None:
        self.log_pane = pane


def test_pane_handler_forwards_engine_and_app_records(qtbot):
    pane = LogPane()
    qtbot.addWidget(pane)
    handler = install_pane_handler(_WindowStub(pane))
    try:
        worker = threading.Thread(
            target=lambda: logging.getLogger("rpyc_engine.deploy.test").warning(
                "build-01: upload slow", extra={"machine": "build-01"}
            )
        )
        worker.start()
        worker.join(timeout=5)
        logging.getLogger("rpyc_explorer.session.test").info(
            "build-01: connected with password=letmein", extra={"machine": "build-01"}
        )
        qtbot.waitUntil(lambda: len(pane.visible_lines()) == 2, timeout=3000)
    finally:
        remove_pane_handler(handler)
    text = pane.view.toPlainText()
    assert "upload slow" in text
    assert "letmein" not in text
    assert pane.machine_combo.findData("build-01") > 0
    logging.getLogger("rpyc_explorer.session.test").info("after removal")
    assert "after removal" not in pane.view.toPlainText()
