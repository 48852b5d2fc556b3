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


def run_module(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "rpyc_explorer", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def test_entry_version():
    result = run_module("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rpyc-explorer {app_version()}"


def crashed_session_dir(temp_dir) -> str:
    """Make a session folder in a child process, then kill it with SIGKILL."""
    code = (
        "from rpyc_explorer.session.askpass import SessionDir\n"
        "print(SessionDir().path, flush=True)\n"
        "import time; time.sleep(60)\n"
    )
    env = dict(os.environ, TMPDIR=str(temp_dir))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        path = child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    return path


@pytest.mark.gui
def test_entry_smoke_connects_and_exits(tmp_path):
    # A crashed run's private folder is removed at the next start.
    leftover = crashed_session_dir(tmp_path)
    assert os.path.isdir(leftover)
    result = run_module("--smoke", env={"TMPDIR": str(tmp_path)})
    assert not os.path.exists(leftover)
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
