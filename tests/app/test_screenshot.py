"""scripts/screenshot.py runs the real application and writes its PNG files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "screenshot.py"

pytestmark = pytest.mark.gui


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", header[16:24])


def test_screenshot_script_writes_main_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--shot", "main-window", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    shot = tmp_path / "main-window.png"
    assert shot.is_file()
    width, height = png_size(shot)
    assert (width, height) == (1280, 800)
    assert [p.name for p in tmp_path.iterdir()] == ["main-window.png"]
