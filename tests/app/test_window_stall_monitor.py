"""The stall monitor measures event-loop lateness."""

from __future__ import annotations

import time

import pytest
from rpyc_explorer.stall_monitor import StallMonitor


def test_stall_monitor_reports_value(qtbot):
    monitor = StallMonitor(interval_ms=5)
    monitor.start()
    qtbot.waitUntil(lambda: monitor.ticks >= 3, timeout=5000)
    # Block the GUI thread on purpose so the next tick is late.
    time.sleep(0.05)
    ticks = monitor.ticks
    qtbot.waitUntil(lambda: monitor.ticks > ticks, timeout=5000)
    monitor.stop()
    assert monitor.worst_ms > 0
    assert not monitor.running
    monitor.reset()
    assert monitor.worst_ms == 0
    assert monitor.ticks == 0


def test_stall_monitor_rejects_bad_interval():
    with pytest.raises(ValueError, match="interval_ms"):
        StallMonitor(interval_ms=0)
