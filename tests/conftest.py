"""Fixtures for the whole suite.

`main_thread_gc` collects garbage on the main thread after every test. Qt objects of a
test (widgets, models, qasync's internals) sit in reference cycles; when the cyclic
collector frees them later from another thread (deploy, heartbeat or session worker
threads), a QObject with a running timer dies outside its thread, its timer stays
registered, and the next ``processEvents()`` crashes in
``QTimerInfoList::activateTimers``. Without this fixture the full suite segfaulted in
an engine test that ran after the Qt tests.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def main_thread_gc() -> Iterator[None]:
    """Collect garbage on the main thread once the test and its fixtures are done."""
    yield
    gc.collect()
