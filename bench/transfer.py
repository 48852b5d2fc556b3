"""10 MiB downloads and uploads over TCP on loopback.

Rows: ``classic.download``/``classic.upload`` of each engine (ours moves 1 MiB per
call, stock 64 KB). The explorer service's file-range calls (``read_range``, and
``upload_open``/``upload_write``/``upload_commit``) in the application's 1 MiB chunks
are measured against stock's ``classic`` helpers. One ``conn.builtins.open(p).read()``
runs on both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List

from bench.calls import servers
from bench.common import HIGHER, Context, Figure, Side, describe_error, measure
from bench.listing import connect

FAMILY = "transfer"
SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024  # the application's transfer chunk (rpyc_explorer.transfers)
ROW_KEYS = ("download", "upload", "range-down", "range-up", "read")


def source_file(ctx: Context) -> Path:
    path = ctx.workdir / "payload-10MiB.bin"
    if not path.exists():
        path.write_bytes(os.urandom(SIZE))
        path.chmod(0o644)
    return path


def classic_module(engine: str) -> Any:
    if engine == "ours":
        from rpyc_engine import classic

        return classic
    import rpyc

    return rpyc.classic


def range_download(conn: Any, remote: str, local: Path) -> None:
    read_range = conn.root.read_range
    with open(local, "wb") as out:
        offset = 0
        while True:
            data, size, error = read_range(remote, offset, CHUNK)
            if error is not None:
                raise RuntimeError(f"read_range({remote!r}, {offset}) failed: {error}")
            out.write(data)
            offset += len(data)
            if not data or offset >= size:
                return


def range_upload(conn: Any, local: Path, remote: str) -> None:
    root = conn.root
    upload_id, error = root.upload_open(remote)
    if error is not None:
        raise RuntimeError(f"upload_open({remote!r}) failed: {error}")
    write = root.upload_write
    with open(local, "rb") as source:
        offset = 0
        while True:
            data = source.read(CHUNK)
            if not data:
                break
            error = write(upload_id, offset, data)
            if error is not None:
                raise RuntimeError(f"upload_write at {offset} failed: {error}")
            offset += len(data)
    error = root.upload_commit(upload_id, True)
    if error is not None:
        raise RuntimeError(f"upload_commit({remote!r}) failed: {error}")


def transfer_actions(engine: str, conn: Any, ctx: Context) -> Dict[str, Callable]:
    """Return the transfers of one engine as callables, keyed by row."""
    source = source_file(ctx)
    target = ctx.workdir / f"{engine}-copy.bin"
    remote_target = str(ctx.workdir / f"{engine}-remote.bin")
    module = classic_module(engine)
    remote_open = conn.builtins.open
    actions = {
        "download": lambda: module.download(conn, str(source), str(target)),
        "upload": lambda: module.upload(conn, str(source), remote_target),
        "read": lambda: remote_open(str(source), "rb").read(),
    }
    if engine == "ours":
        actions["range-down"] = lambda: range_download(conn, str(source), target)
        actions["range-up"] = lambda: range_upload(conn, source, remote_target)
    return actions


def measure_interleaved(actions: Dict[str, Dict[str, Callable]], ctx: Context) -> dict:
    """Time every action, alternating the engines sample by sample.

    Stock's transfers take seconds each, so stock gets ``slow_repeat`` samples and
    ours ``repeat`` (at most 2 in quick mode). The samples alternate while both still
    need one.
    """
    settings = ctx.settings
    ours = settings.repeat if settings.mode == "full" else min(2, settings.repeat)
    repeats = {"ours": ours, "stock": settings.slow_repeat}
    results: Dict[str, dict] = {engine: {} for engine in actions}
    keys = [key for key in ROW_KEYS if any(key in table for table in actions.values())]
    for key in keys:
        for index in range(max(repeats[engine] for engine in actions)):
            for engine, table in actions.items():
                done = results[engine].get(key, [])
                if (
                    key not in table
                    or isinstance(done, str)
                    or index >= repeats[engine]
                ):
                    continue
                try:
                    results[engine][key] = done + measure(table[key], 1)
                except Exception as exc:
                    results[engine][key] = describe_error(exc)
    for result in results.values():
        result.setdefault("range-down", result.get("download"))
        result.setdefault("range-up", result.get("upload"))
    return results


def run(ctx: Context) -> List[Figure]:
    specs = {"ours": ("ours", "explorer"), "stock": ("stock", "classic")}
    results: dict = {}
    conns: Dict[str, Any] = {}
    with servers(*specs.values()) as ports:
        try:
            actions = {}
            for engine, spec in specs.items():
                try:
                    conns[engine] = connect(engine, ports[spec])
                    actions[engine] = transfer_actions(engine, conns[engine], ctx)
                except Exception as exc:
                    results[engine] = {"error": describe_error(exc)}
            results.update(measure_interleaved(actions, ctx))
        finally:
            for conn in conns.values():
                conn.close()
    copy = ctx.workdir / "ours-copy.bin"
    if copy.exists() and copy.stat().st_size != SIZE:
        raise RuntimeError(f"ours downloaded {copy.stat().st_size} bytes, not {SIZE}")

    def pick(engine: str, key: str, rate: bool = False) -> Side:
        data = results[engine]
        value = data.get("error") or data.get(key)
        if value is None:
            return Side(text="n/a")
        if isinstance(value, str):
            return Side(error=value)
        if rate:
            return Side(samples=[SIZE / 1e6 / seconds for seconds in value])
        return Side(samples=value)

    rows = [
        ("download", "10 MiB `classic.download`", "ours: 1 MiB per call; rpyc: 64 KB"),
        ("upload", "10 MiB `classic.upload`", ""),
        (
            "range-down",
            "10 MiB download, explorer `read_range` in 1 MiB chunks (rpyc: "
            "`classic.download`)",
            "",
        ),
        (
            "range-up",
            "10 MiB upload, explorer `upload_write` in 1 MiB chunks (rpyc: "
            "`classic.upload`)",
            "",
        ),
        ("read", "10 MiB by one `conn.builtins.open(p, 'rb').read()`", ""),
    ]
    figures = []
    for key, label, note in rows:
        figures.append(
            Figure(
                FAMILY,
                label,
                "s",
                ours=pick("ours", key),
                stock=pick("stock", key),
                note=note,
            )
        )
        figures.append(
            Figure(
                FAMILY,
                "↳ rate",
                "MB/s",
                better=HIGHER,
                ours=pick("ours", key, True),
                stock=pick("stock", key, True),
            )
        )
    return figures
