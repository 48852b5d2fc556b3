"""Fixtures for tests that reach a real sshd on 127.0.0.1 (see tests/sshd.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sshd import sshd_server  # noqa: E402, F401  (session-scoped fixture)
