"""Resident memory (VmRSS from /proc/PID/status) of servers and clients, both engines.

Each sample uses fresh processes: a classic server (``bench.servers``) and a client
process (``python -m bench.memory ENGINE PORT``) that prints its RSS bare, after
importing the engine, and after connecting and making one call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import List

from bench.common import (
    REPO_ROOT,
    Context,
    Figure,
    Side,
    describe_error,
    rss_mib,
    start_server,
    stop_server,
)

FAMILY = "memory"
SETTLE = 0.3  # seconds for a fresh process to finish starting before it is read


def client_main(engine: str, port: int) -> None:
    """Print this process's RSS (``bare``, ``imported``, ``connected``) as JSON."""
    import os

    figures = {"bare": rss_mib(os.getpid())}
    if engine == "ours":
        from rpyc_engine import classic

        figures["imported"] = rss_mib(os.getpid())
        conn = classic.connect("127.0.0.1", port)
    else:
        import rpyc

        figures["imported"] = rss_mib(os.getpid())
        conn = rpyc.classic.connect("127.0.0.1", port)
    conn.modules.os.getpid()
    figures["connected"] = rss_mib(os.getpid())
    conn.close()
    print(json.dumps(figures), flush=True)


def sample(engine: str) -> dict:
    process, port = start_server(engine, "classic")
    try:
        time.sleep(SETTLE)
        idle = rss_mib(process.pid)
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", engine, str(port)],
            cwd=str(REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        client = json.loads(done.stdout)
        return {"idle": idle, "after": rss_mib(process.pid), **client}
    finally:
        stop_server(process)


def run(ctx: Context) -> List[Figure]:
    samples: dict = {"ours": [], "stock": []}
    errors: dict = {}
    for _ in range(ctx.settings.slow_repeat):
        for engine in samples:
            try:
                samples[engine].append(sample(engine))
            except Exception as exc:
                errors[engine] = describe_error(exc)

    def pick(engine: str, key: str) -> Side:
        if engine in errors:
            return Side(error=errors[engine])
        return Side(samples=[values[key] for values in samples[engine]])

    rows = [
        ("idle", "classic server RSS, idle"),
        ("after", "classic server RSS after a client connected and made one call"),
        ("bare", "client RSS, bare interpreter"),
        ("imported", "client RSS after importing the engine"),
        ("connected", "client RSS after connect + one call"),
    ]
    return [
        Figure(FAMILY, label, "MiB", ours=pick("ours", key), stock=pick("stock", key))
        for key, label in rows
    ]


if __name__ == "__main__":
    client_main(sys.argv[1], int(sys.argv[2]))
