"""Figures, statistics, settings and the shared run context of the benchmark command.

A `Figure` holds the samples of one measured quantity for our engine, for stock rpyc
and, where one exists, for the physical floor. A family module returns a list of
figures; a side that fails stores its error text instead of samples, so one broken
measurement never stops the others.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TREE_ENTRIES = 10_000
LOWER = "lower"
HIGHER = "higher"


@dataclass
class Side:
    """The samples of one side of a figure, or why it has none."""

    samples: List[float] = field(default_factory=list)
    error: Optional[str] = None
    text: Optional[str] = None  # a non-numeric result, e.g. "none (no temp dir)"

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class Figure:
    """One row of the report: a quantity measured for both engines."""

    family: str
    name: str
    unit: str
    better: str = LOWER
    ours: Side = field(default_factory=Side)
    stock: Side = field(default_factory=Side)
    floor: Optional[Side] = None
    note: str = ""

    @property
    def ratio(self) -> Optional[float]:
        """How many times better ours is than stock (> 1 means ours is better)."""
        return self._ratio(self.ours.median, self.stock.median)

    @property
    def best_ratio(self) -> Optional[float]:
        """The ratio of the best samples (min, or max for ↑ figures) of each side.

        On a busy machine the best sample is the one least disturbed by other processes.
        """
        pick = min if self.better == LOWER else max
        ours = pick(self.ours.samples) if self.ours.samples else None
        stock = pick(self.stock.samples) if self.stock.samples else None
        return self._ratio(ours, stock)

    def _ratio(self, ours: Optional[float], stock: Optional[float]) -> Optional[float]:
        if ours is None or stock is None or ours <= 0 or stock <= 0:
            return None
        return stock / ours if self.better == LOWER else ours / stock


@dataclass
class Settings:
    """How hard to measure: repeats, batch sizes and caps of the naive runs."""

    mode: str  # "quick" or "full"
    repeat: int
    calls_per_batch: int
    naive_entries: int  # entries of the naive listing actually walked
    slow_repeat: int = (
        1  # samples of figures that take seconds each (deploys, stock transfers)
    )
    lateness_calls: int = 1000

    @classmethod
    def for_mode(cls, mode: str, repeat: Optional[int] = None) -> Settings:
        if mode == "full":
            settings = cls(
                mode, repeat=7, calls_per_batch=2000, naive_entries=2000, slow_repeat=5
            )
        else:
            settings = cls(mode, repeat=3, calls_per_batch=300, naive_entries=100)
        if repeat is not None:
            settings.repeat = max(1, repeat)
            settings.slow_repeat = min(settings.slow_repeat, settings.repeat)
        return settings


class Context:
    """Things several families share: settings, the sshd and temporary files."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        # The deployed servers run as the sshd's test user and list the trees here.
        os.chmod(workdir, 0o755)
        self._sshd: Any = None
        self._sshd_error: Optional[str] = None
        self.cleanups: List[Callable[[], None]] = []

    def sshd(self) -> Any:
        """Start the throwaway loopback sshd of tests/sshd.py once and return it."""
        if self._sshd_error is not None:
            raise RuntimeError(self._sshd_error)
        if self._sshd is None:
            sys.path.insert(0, str(REPO_ROOT / "tests"))
            try:
                import sshd  # tests/sshd.py, usable outside pytest

                self._sshd = sshd.start_sshd()
            except Exception as exc:
                self._sshd_error = f"the loopback sshd did not start: {exc}"
                raise RuntimeError(self._sshd_error) from exc
            self.cleanups.append(self._sshd.stop)
        return self._sshd

    def tree(self, entries: int = TREE_ENTRIES) -> Path:
        """Return a directory of ``entries`` small files, created on first use."""
        return make_tree(self.workdir / f"tree-{entries}", entries)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as exc:  # cleanup must go on for the rest
                logger.warning("cleanup %r failed: %s", cleanup, exc)
        self.cleanups.clear()


def measure(function: Callable[[], Any], repeat: int) -> List[float]:
    """Run ``function`` ``repeat`` times and return the seconds each run took."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def per_call_us(call: Callable[[], Any], calls: int, repeat: int) -> List[float]:
    """Return microseconds per call of ``call``, one sample per batch of ``calls``."""
    call()  # warm up: caches, netref classes, the first round trip
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return samples


def side(function: Callable[[], Sequence[float]]) -> Side:
    """Run one side's measurement; an exception becomes the side's error text."""
    try:
        return Side(samples=list(function()))
    except Exception as exc:
        logger.warning("measurement failed", exc_info=True)
        return Side(error=describe_error(exc))


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:160]


def failed_family(family: str, exc: BaseException) -> Figure:
    """Return the single row that reports a family which could not run at all."""
    error = describe_error(exc)
    return Figure(
        family, "(whole family)", "", ours=Side(error=error), stock=Side(error=error)
    )


class FrameCounter:
    """Counts the frames a client connection writes, for both engines.

    Both engines write one frame with one ``stream.write`` call (stock splits frames
    larger than 64 KiB into several writes, which requests in these figures never are).
    Stock's stream has ``__slots__``, so its channel gets a counting wrapper instead.
    """

    def __init__(self, conn: Any) -> None:
        self.frames = 0
        driver = getattr(conn, "_driver", None)
        if driver is not None:
            stream = driver.stream
            self._write = stream.write
            stream.write = self._counting_write
        else:
            channel = conn._channel
            self._write = channel.stream.write
            channel.stream = _CountingStream(channel.stream, self._counting_write)

    def _counting_write(self, data: Any) -> Any:
        self.frames += 1
        return self._write(data)

    def take(self) -> int:
        """Return the frames counted since the last call and restart the count."""
        frames, self.frames = self.frames, 0
        return frames


class _CountingStream:
    def __init__(self, stream: Any, write: Callable[[Any], Any]) -> None:
        self._stream = stream
        self.write = write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def start_server(engine: str, kind: str) -> tuple:
    """Start ``python -m bench.servers ENGINE KIND`` and return ``(process, port)``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers", engine, kind],
        cwd=str(REPO_ROOT),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.strip().isdigit():
        stop_server(process)
        raise RuntimeError(f"the {engine} {kind} server printed {line!r}, not its port")
    return process, int(line)


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server started by `start_server`: close its stdin, then kill by PID."""
    try:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=5)
    except (subprocess.TimeoutExpired, OSError):
        process.kill()
        process.wait(timeout=5)


def rss_mib(pid: int) -> float:
    """Return the resident set size (VmRSS) of process ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state == "Z"


def wait_until(
    predicate: Callable[[], bool], timeout: float, step: float = 0.002
) -> float:
    """Poll ``predicate`` until true; return the seconds waited or raise on timeout."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.perf_counter() - started


def make_tree(directory: Path, entries: int) -> Path:
    """Create ``directory`` with ``entries`` small files (kept between runs)."""
    marker = directory.with_name(f"{directory.name}.complete-{entries}")
    if marker.exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(entries):
        (directory / f"file-{number:05d}.txt").write_bytes(b"x" * (number % 97))
    marker.write_text("")
    os.chmod(directory, 0o755)
    return directory
