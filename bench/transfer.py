"""10 MiB downloads and uploads over TCP on loopback.

Rows: ``classic.download``/``classic.upload`` of each engine (ours moves 1 MiB per
call, stock 64 KB); the explorer service's file-range calls (``read_range``, and
``upload_open``/``upload_write``/``upload_commit``) in the application's 1 MiB chunks
against stock's ``classic`` helpers; and one ``conn.builtins.open(p).read()`` on both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, List

from bench.calls import servers
from bench.common import HIGHER, Context, Figure, Side, describe_error, measure
from bench.listing import connect

FAMILY = "transfer"
SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024  # the application's transfer chunk (rpyc_explorer.transfers)


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


def measure_engine(engine: str, port: int, ctx: Context) -> dict:
    source = source_file(ctx)
    target = ctx.workdir / f"{engine}-copy.bin"
    remote_target = str(ctx.workdir / f"{engine}-remote.bin")
    repeat = ctx.settings.repeat if engine == "ours" else ctx.settings.slow_repeat
    module = classic_module(engine)
    conn = connect(engine, port)
    result: dict = {}

    def timed(key: str, action: Callable[[], Any]) -> None:
        try:
            result[key] = measure(action, repeat)
        except Exception as exc:
            result[key] = describe_error(exc)

    try:
        timed("download", lambda: module.download(conn, str(source), str(target)))
        timed("upload", lambda: module.upload(conn, str(source), remote_target))
        if engine == "ours":
            timed("range-down", lambda: range_download(conn, str(source), target))
            timed("range-up", lambda: range_upload(conn, source, remote_target))
        else:
            result["range-down"] = result["download"]
            result["range-up"] = result["upload"]
        remote_open = conn.builtins.open
        timed("read", lambda: remote_open(str(source), "rb").read())
    finally:
        conn.close()
    if target.exists() and target.stat().st_size != SIZE:
        raise RuntimeError(
            f"{engine}: downloaded {target.stat().st_size} bytes, not {SIZE}"
        )
    return result


def run(ctx: Context) -> List[Figure]:
    specs = {"ours": ("ours", "explorer"), "stock": ("stock", "classic")}
    results: dict = {}
    with servers(*specs.values()) as ports:
        for engine, spec in specs.items():
            try:
                results[engine] = measure_engine(engine, ports[spec], ctx)
            except Exception as exc:
                results[engine] = {"error": describe_error(exc)}

    def pick(engine: str, key: str, rate: bool = False) -> Side:
        data = results[engine]
        value = data.get("error") or data.get(key)
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
