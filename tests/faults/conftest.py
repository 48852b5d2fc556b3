"""Fixtures for the fault-injection tests: import paths, the sshd, and leak checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for sshd.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # fault_helpers.py

from fault_helpers import ThreadWatch  # noqa: E402
from sshd import sshd_server  # noqa: E402, F401  (session-scoped fixture)


@pytest.fixture
def thread_watch():
    """Fail the test when it leaves running threads that did not exist at its start."""
    watch = ThreadWatch()
    yield watch
    watch.assert_no_new_threads()
