"""Paths the packaging tests share (a module of its own, because test modules cannot
import from conftest.py when several conftest.py files exist)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SH = REPO / "packaging" / "install.sh"
