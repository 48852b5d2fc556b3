"""asyncio loop lateness while 1 000 remote calls run, on the default loop and qasync.

A ticker task sleeps 1 ms at a time and records how late each wake-up is; meanwhile
1 000 ``getpid`` calls run one after another. Ours awaits them through the engine's
asyncio driver (``rpyc_engine.aio``); stock rpyc has no asyncio driver, so its calls
run in the loop's default thread pool (``run_in_executor``), the usual way to keep a
blocking client off the loop.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from functools import partial
from typing import Any, Callable, List

from bench.calls import servers
from bench.common import Context, Figure, Side, describe_error

FAMILY = "lateness"
TICK = 0.001


async def ticker(lateness: List[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(TICK)
        lateness.append((time.perf_counter() - started - TICK) * 1000)


async def ours_calls(port: int, calls: int, ready: Callable[[], None]) -> None:
    from rpyc_engine import aio

    conn = await aio.connect("127.0.0.1", port)
    try:
        getpid = await aio.getattr(await aio.root(conn), "getpid")
        ready()
        for _ in range(calls):
            await aio.call(getpid)
    finally:
        await aio.close(conn)


async def stock_calls(port: int, calls: int, ready: Callable[[], None]) -> None:
    import rpyc

    loop = asyncio.get_running_loop()
    conn = await loop.run_in_executor(None, rpyc.connect, "127.0.0.1", port)
    try:
        getpid = await loop.run_in_executor(None, lambda: conn.root.getpid)
        ready()
        for _ in range(calls):
            await loop.run_in_executor(None, getpid)
    finally:
        await loop.run_in_executor(None, conn.close)


async def scenario(calls: Callable[[Callable[[], None]], Any]) -> tuple:
    """Run ``calls(ready)`` beside the ticker; lateness counts from ``ready()`` on."""
    lateness: List[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(ticker(lateness, stop))
    try:
        await calls(lateness.clear)
    finally:
        stop.set()
        await task
    ordered = sorted(lateness)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[-1], p99, statistics.median(ordered)


def run_on_qasync(coro_factory: Callable[[], Any]) -> Any:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro_factory())
    finally:
        from rpyc_explorer.app import close_loop

        close_loop(loop)
        asyncio.set_event_loop(None)


def run(ctx: Context) -> List[Figure]:
    calls = ctx.settings.lateness_calls
    repeat = max(1, ctx.settings.slow_repeat)
    results: dict = {}
    with servers(("ours", "service"), ("stock", "service")) as ports:
        for loop_name in ("asyncio", "qasync"):
            for engine, factory in (("ours", ours_calls), ("stock", stock_calls)):
                port = ports[(engine, "service")]
                runs = []
                try:
                    for _ in range(repeat):
                        coro = partial(scenario, partial(factory, port, calls))
                        if loop_name == "asyncio":
                            runs.append(asyncio.run(coro()))
                        else:
                            runs.append(run_on_qasync(coro))
                    results[(loop_name, engine)] = runs
                except Exception as exc:
                    results[(loop_name, engine)] = describe_error(exc)
    figures = figures_from(results, calls)
    return figures + burst_figures(calls)


def burst_figures(calls: int) -> List[Figure]:
    """Ours only: all calls at once with ``asyncio.gather`` (bench.loop_lateness)."""
    import tempfile

    from bench import loop_lateness

    figures = []
    stock = Side(text="n/a: no asyncio driver")
    with tempfile.TemporaryDirectory(prefix="rpyc-bench-lateness-") as workdir:
        proc, port = loop_lateness.start_server(workdir)
        try:
            for use_qasync, title in (
                (False, "default asyncio loop"),
                (True, "qasync loop"),
            ):
                try:
                    ticks = loop_lateness.run_on_loop(
                        lambda: loop_lateness.measure(port, "add", calls, calls),
                        use_qasync,
                    )
                    ordered = sorted(tick * 1000 for tick in ticks)
                    worst = Side(samples=[ordered[-1]])
                    p99 = Side(
                        samples=[
                            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                        ]
                    )
                except Exception as exc:
                    worst = p99 = Side(error=describe_error(exc))
                label = (
                    f"{title}: %s lateness of a 5 ms timer, {calls} concurrent calls"
                )
                figures.append(
                    Figure(FAMILY, label % "worst", "ms", ours=worst, stock=stock)
                )
                figures.append(
                    Figure(FAMILY, label % "p99", "ms", ours=p99, stock=stock)
                )
        finally:
            proc.terminate()
            proc.wait(10)
    return figures


def figures_from(results: dict, calls: int) -> List[Figure]:
    def pick(loop_name: str, engine: str, index: int) -> Side:
        runs = results[(loop_name, engine)]
        if isinstance(runs, str):
            return Side(error=runs)
        return Side(samples=[values[index] for values in runs])

    figures = []
    note = (
        "rpyc: calls run in the loop's thread pool (no asyncio driver); "
        "ours: `rpyc_engine.aio` on the loop"
    )
    for loop_name, title in (
        ("asyncio", "default asyncio loop"),
        ("qasync", "qasync loop"),
    ):
        for index, what in ((0, "worst"), (1, "p99"), (2, "median")):
            figures.append(
                Figure(
                    FAMILY,
                    f"{title}: {what} lateness of a 1 ms timer during {calls} calls",
                    "ms",
                    ours=pick(loop_name, "ours", index),
                    stock=pick(loop_name, "stock", index),
                    note=note,
                )
            )
    return figures
