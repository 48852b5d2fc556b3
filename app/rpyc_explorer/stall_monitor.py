"""Event-loop stall monitor.

A repeating QTimer asks to fire every ``interval_ms``; each time it fires, the monitor
records how late it was. Lateness is time the GUI thread spent on something else (a
blocking call, a long paint), so the worst lateness bounds how long the window froze.
Tests and benchmarks read :attr:`StallMonitor.worst_ms`. It imports only QtCore.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class StallMonitor(QObject):
    """Measures how late a repeating timer fires on the Qt event loop.

    Args:
        interval_ms: The timer interval in milliseconds. Lateness below this resolution
            is noise; 10 ms suits a 50 ms stall budget.
        parent: The owning QObject.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if interval_ms <= 0:
            raise ValueError(f"interval_ms must be positive, got {interval_ms!r}")
        self._interval_s = interval_ms / 1000.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        # A precise timer keeps Qt from coarsening the interval by up to 5 %, which
        # would otherwise show up as lateness.
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_tick)
        self._last_tick: float | None = None
        self._worst_s = 0.0
        self._ticks = 0

    @property
    def worst_ms(self) -> float:
        """The worst lateness seen since start or the last reset, in milliseconds."""
        return self._worst_s * 1000.0

    @property
    def ticks(self) -> int:
        """How many times the timer fired since start or the last reset."""
        return self._ticks

    @property
    def running(self) -> bool:
        """Whether the timer is active."""
        return self._timer.isActive()

    def start(self) -> None:
        """Start measuring; the worst value so far is kept until reset()."""
        self._last_tick = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        """Stop measuring and keep the values read so far."""
        self._timer.stop()
        self._last_tick = None

    def reset(self) -> None:
        """Forget the worst lateness and the tick count."""
        self._worst_s = 0.0
        self._ticks = 0
        if self._last_tick is not None:
            self._last_tick = time.perf_counter()

    def _on_tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None:
            lateness = now - self._last_tick - self._interval_s
            if lateness > self._worst_s:
                self._worst_s = lateness
        self._last_tick = now
        self._ticks += 1
