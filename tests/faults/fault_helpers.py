"""Helpers shared by the fault-injection tests: leak checks and process waits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Callable, List, Set, Tuple


class ThreadWatch:
    """Records the live threads now, to check later that no new one is left running."""

    def __init__(self) -> None:
        self.before: Set[threading.Thread] = set(threading.enumerate())

    def new_threads(self, within: float = 10.0) -> List[str]:
        """Return the names of threads started since, waiting ``within`` s for them."""
        deadline = time.monotonic() + within
        while True:
            extra = [
                t
                for t in threading.enumerate()
                if t not in self.before and t.is_alive()
            ]
            if not extra or time.monotonic() >= deadline:
                return sorted(t.name for t in extra)
            time.sleep(0.05)

    def assert_no_new_threads(self, within: float = 10.0) -> None:
        """Fail when threads started since construction outlive ``within`` s."""
        left = self.new_threads(within)
        assert left == [], f"threads left running: {left}"


def child_pids(pid: int | None = None) -> Set[int]:
    """Return the PIDs of every live descendant of ``pid`` (default: this process)."""
    root = os.getpid() if pid is None else pid
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: Set[int] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def process_gone(pid: int, within: float) -> bool:
    """Return True once ``pid`` is gone or a zombie, waiting up to ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z" or time.monotonic() >= deadline:
            return state == "Z"
        time.sleep(0.02)


def wait_until(condition: Callable[[], bool], within: float) -> bool:
    """Poll ``condition`` every 20 ms for ``within`` s; return its last value."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(0.02)
    return True


SERVER_SCRIPT = """
import importlib, sys
from rpyc_engine.server import ThreadedServer
module, _, name = sys.argv[1].rpartition(".")
server = ThreadedServer(getattr(importlib.import_module(module), name), port=0)
server.listen()
print(server.port, flush=True)
server.start()
"""


def start_server_process(service: str) -> Tuple[subprocess.Popen, int]:
    """Serve the dotted class ``service`` from a child; return the child and port."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, service],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait()
        raise RuntimeError(f"server for {service} did not start; it printed {line!r}")
    return process, int(line)


def stop_process(process: subprocess.Popen) -> None:
    """Kill ``process`` (if still running) and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()
