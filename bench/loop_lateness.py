"""Event-loop lateness while rpyc_engine.aio runs remote calls.

A timer on the loop is due every 5 ms; its lateness (how long after its due time it
ran) shows how long the loop was blocked. The server is ``python -m rpyc_engine serve``
in a subprocess on loopback, so only the client's own work competes with the loop.

Run: ``python -m bench.loop_lateness [--calls N] [--batch N] [--qasync]``. Prints the
worst and the 99th-percentile lateness per case. Standalone: the benchmark command may
absorb it as a family.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Awaitable, Callable, List, Tuple

from rpyc_engine import aio

TICK = 0.005  # seconds between timer ticks

# The server's service: one fast and one 1 ms method (importable by the subprocess).
SERVICE_SOURCE = """
import time
from rpyc_engine.services.base import Service

class LatenessService(Service):
    def exposed_add(self, a, b):
        return a + b

    def exposed_add_slowly(self, a, b):
        time.sleep(0.001)
        return a + b
"""


def start_server(workdir: str) -> Tuple[subprocess.Popen, int]:
    """Start the server subprocess; return it and its port."""
    with open(os.path.join(workdir, "lateness_service.py"), "w") as module:
        module.write(SERVICE_SOURCE)
    env = dict(
        os.environ, PYTHONPATH=workdir + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    argv = [
        sys.executable, "-m", "rpyc_engine", "serve", "--port", "0",
        "--service", "lateness_service:LatenessService", "--log-level", "WARNING",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    return proc, int(proc.stdout.readline())


async def measure(port: int, method: str, calls: int, batch: int) -> List[float]:
    """Run ``calls`` calls of ``method``, ``batch`` at a time; return tick lateness."""
    loop = asyncio.get_running_loop()
    lateness: List[float] = []
    running = True

    def tick(due: float) -> None:
        if running:
            now = loop.time()
            lateness.append(max(0.0, now - due))
            loop.call_at(now + TICK, tick, now + TICK)

    conn = await aio.connect("127.0.0.1", port)
    try:
        target = await aio.getattr(await aio.root(conn), method)
        start = loop.time()
        loop.call_at(start + TICK, tick, start + TICK)
        for first in range(0, calls, batch):
            numbers = range(first, min(calls, first + batch))
            await asyncio.gather(*[aio.call(target, n, n) for n in numbers])
        running = False
    finally:
        await aio.close(conn)
    return lateness


def run_on_loop(
    make: Callable[[], Awaitable[List[float]]], use_qasync: bool
) -> List[float]:
    if not use_qasync:
        return asyncio.run(make())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per case")
    parser.add_argument("--qasync", action="store_true", help="run on qasync's loop")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        proc, port = start_server(workdir)
        try:
            for method in ("add", "add_slowly"):
                for batch in (args.calls, 100, 10):
                    started = time.perf_counter()
                    lateness = run_on_loop(
                        lambda method=method, batch=batch: measure(
                            port, method, args.calls, batch
                        ),
                        args.qasync,
                    )
                    elapsed = time.perf_counter() - started
                    worst = max(lateness, default=0.0) * 1000
                    p99 = (
                        statistics.quantiles(lateness, n=100, method="inclusive")[98]
                        * 1000
                        if len(lateness) >= 2
                        else worst
                    )
                    print(
                        f"{'qasync' if args.qasync else 'asyncio'} {method:<10} "
                        f"{args.calls} calls in batches of {batch:<5} "
                        f"{elapsed:6.2f} s  ticks {len(lateness):4d}  "
                        f"worst {worst:6.1f} ms  p99 {p99:6.1f} ms"
                    )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
