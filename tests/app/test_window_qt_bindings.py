"""Checks the Qt bindings for a reference-count bug that aborts the application.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a method
that returns nothing; after a few thousand calls the interpreter aborts with
"deallocating None", usually far from the cause. pyproject.toml keeps that version
out; this test fails if such a version comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel


def test_void_qt_calls_keep_none_refcount(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    owner = QObject()
    before = sys.getrefcount(None)
    for _ in range(500):
        label.setText("x")
        label.setVisible(False)
        owner.setObjectName("x")
    # A few references may come and go elsewhere; a leak of one per call is 1,500.
    assert sys.getrefcount(None) >= before - 50
