"""Listing a 10 000-entry directory: naive netrefs against one server-side call a page.

Naive: ``os.listdir`` as a netref, then per entry ``os.stat`` and three attribute
reads, the same client code for both engines. It walks only
``Settings.naive_entries`` entries and extrapolates the time to 10 000.

One call: ours calls the explorer service's ``list_dir`` page (name, kind, size, mtime,
mode, owner, group, link target per entry; the first page scans and sorts the whole
directory); stock calls a function defined on the server with ``conn.execute`` that
returns ``(name, size, mtime, mode)`` tuples, as stock users do.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List

from bench.calls import servers
from bench.common import (
    TREE_ENTRIES,
    Context,
    Figure,
    FrameCounter,
    Side,
    describe_error,
    measure,
)

FAMILY = "listing"
PAGE = 500

STOCK_LIST_SOURCE = """
def bench_list(path, offset, limit):
    import os
    rows = []
    for entry in os.scandir(path):
        st = entry.stat(follow_symlinks=False)
        rows.append((entry.name, st.st_size, st.st_mtime, st.st_mode))
    rows.sort()
    return tuple(rows[offset:offset + limit])
"""


def connect(engine: str, port: int) -> Any:
    if engine == "ours":
        from rpyc_engine import classic

        return classic.connect("127.0.0.1", port)
    import rpyc

    return rpyc.classic.connect("127.0.0.1", port)


def naive_walk(conn: Any, path: str, cap: int) -> tuple:
    """Walk ``cap`` entries through netrefs.

    Returns:
        ``(seconds per entry, frames per entry, seconds of the listdir call)``.
    """
    counter = FrameCounter(conn)
    remote_os = conn.modules.os
    stat = remote_os.stat
    started = time.perf_counter()
    names = remote_os.listdir(path)
    iterator = iter(names)
    setup = time.perf_counter() - started
    counter.take()
    rows = []
    started = time.perf_counter()
    for _ in range(cap):
        name = next(iterator)
        st = stat(path + "/" + name)
        rows.append((name, st.st_size, st.st_mtime, st.st_mode))
    elapsed = time.perf_counter() - started
    return elapsed / cap, counter.take() / cap, setup


def page_function(engine: str, conn: Any) -> Callable[[str, int, int], Any]:
    if engine == "ours":
        return conn.root.list_dir
    conn.execute(STOCK_LIST_SOURCE)
    return conn.namespace["bench_list"]


def run(ctx: Context) -> List[Figure]:
    settings = ctx.settings
    path = str(ctx.tree())
    specs = {"ours": ("ours", "explorer"), "stock": ("stock", "classic")}
    results: dict = {}
    with servers(*specs.values()) as ports:
        for engine, spec in specs.items():
            try:
                results[engine] = measure_engine(engine, ports[spec], path, settings)
            except Exception as exc:
                results[engine] = {"error": describe_error(exc)}
    return figures_from(results, settings.naive_entries)


def measure_engine(engine: str, port: int, path: str, settings: Any) -> dict:
    result: dict = {}
    conn = connect(engine, port)
    try:
        per_entry, frames, setups = [], [], []
        for _ in range(settings.repeat if settings.mode == "full" else 1):
            seconds, frame_count, setup = naive_walk(conn, path, settings.naive_entries)
            per_entry.append(seconds)
            frames.append(frame_count)
            setups.append(setup)
        result["naive"] = [s * TREE_ENTRIES + t for s, t in zip(per_entry, setups)]
        result["naive-entry"] = [s * 1000 for s in per_entry]
        result["naive-frames"] = [f * TREE_ENTRIES for f in frames]
        page = page_function(engine, conn)
        counter = FrameCounter(conn)
        page(path, 0, PAGE)  # warm up the held method and the server's code path
        counter.take()
        result["first"] = measure(lambda: page(path, 0, PAGE), settings.repeat)
        result["first-frames"] = [counter.take() / settings.repeat]
        result["all"] = measure(lambda: list_all(engine, page, path), settings.repeat)
        result["all-frames"] = [counter.take() / settings.repeat]
        same = page_function("stock", conn)
        same(path, 0, PAGE)
        result["same-first"] = measure(lambda: same(path, 0, PAGE), settings.repeat)
        result["same-all"] = measure(
            lambda: same(path, 0, TREE_ENTRIES), settings.repeat
        )
    finally:
        conn.close()
    return result


def list_all(engine: str, page: Callable, path: str) -> int:
    """Fetch every entry: ours in pages of 5 000 (the service's cap), stock at once."""
    if engine != "ours":
        return len(page(path, 0, TREE_ENTRIES))
    entries, total, error = page(path, 0, 5000)
    count = len(entries)
    while error is None and count < total:
        more, total, error = page(path, count, 5000)
        count += len(more)
    if error is not None:
        raise RuntimeError(f"list_dir({path!r}) failed: {error}")
    return count


def figures_from(results: dict, cap: int) -> List[Figure]:
    def pick(engine: str, key: str) -> Side:
        data = results.get(engine, {})
        if "error" in data:
            return Side(error=data["error"])
        return Side(samples=data.get(key, []))

    rows = [
        (
            "naive",
            f"naive netref listing of 10 000 entries (extrapolated from {cap})",
            "s",
        ),
        ("naive-entry", "↳ time per entry (`stat` + 3 attribute reads + `next`)", "ms"),
        (
            "naive-frames",
            "↳ frames sent by the client for 10 000 entries (extrapolated)",
            "frames",
        ),
        ("first", f"time to the first page ({PAGE} entries), one call", "s"),
        ("first-frames", "↳ frames sent by the client for the first page", "frames"),
        ("all", "all 10 000 entries by server-side calls", "s"),
        ("all-frames", "↳ frames sent by the client for all entries", "frames"),
        (
            "same-first",
            f"same `conn.execute`-defined function on both, first {PAGE}",
            "s",
        ),
        ("same-all", "same `conn.execute`-defined function on both, all 10 000", "s"),
    ]
    notes = {
        "first": "ours: `list_dir` of the explorer service (8 fields per entry, owner "
        "and group names included); rpyc: a `conn.execute`-defined function "
        "returning (name, size, mtime, mode); both scan and sort the whole directory "
        "for the first page",
        "all": "ours: 2 pages of 5 000 (the service's page cap); rpyc: one call",
        "same-first": "the engines alone: both servers run the function that rpyc "
        "uses above, so the difference is the engine's transport and codec",
    }
    return [
        Figure(
            FAMILY,
            label,
            unit,
            ours=pick("ours", key),
            stock=pick("stock", key),
            note=notes.get(key, ""),
        )
        for key, label, unit in rows
    ]
