"""Side-by-side trivial-call profile of our engine and stock rpyc over loopback TCP.

Usage::

    python3 -m bench.profile_calls [--calls N] [--repeat R] [--pin CPU]
        [--kinds ping,held,chain,root] [--cprofile DIR]
    python3 -m bench.profile_calls server ENGINE KIND [PROFILE_FILE]

The first form starts one server process per engine and kind (classic, service), then
measures sequential synchronous calls from this process, alternating ours and stock
batch by batch so that load from other processes hits both alike. For every batch it
records wall time and CPU time (user + system) of the client (this process) and of the
server process (``/proc/PID/task/*/schedstat``, nanoseconds). It prints medians of µs
per call, calls per second and the ratio stock / ours. A raw socket ping-pong between
two Python processes (16 bytes each way, ``TCP_NODELAY``) is the physical floor of one
round trip. ``--pin CPU`` pins the client and every server to that one CPU (taskset).

``--cprofile DIR`` skips the comparison: it runs our client and our server under
cProfile and writes ``client.prof`` and ``server.prof`` to DIR.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("ping", "held", "chain", "root")


# ---------------------------------------------------------------------- server side


def server_main(engine: str, kind: str, profile_file: Optional[str]) -> None:
    """Serve until stdin closes; print the port first. Profile all threads if asked."""
    if profile_file:
        profiler = cProfile.Profile()
        original_run = threading.Thread.run

        def profiled_run(self: threading.Thread) -> None:
            profiler.enable()
            try:
                original_run(self)
            finally:
                profiler.disable()

        threading.Thread.run = profiled_run  # type: ignore[method-assign]
    # The servers of bench.calls, so both scripts measure the same thing.
    from bench.servers import _echo_server, _ours, _stock

    if kind == "echo":
        port = _echo_server().getsockname()[1]
    elif engine == "ours":
        port = _ours(kind)
    else:
        port = _stock(kind)
    print(port, flush=True)
    sys.stdin.read()
    if profile_file:
        profiler.create_stats()
        profiler.dump_stats(profile_file)
    os._exit(0)


# ---------------------------------------------------------------------- client side


class Server:
    """A server subprocess of this module, optionally pinned to one CPU."""

    def __init__(
        self, engine: str, kind: str, pin: Optional[int], profile: str = ""
    ) -> None:
        argv = [sys.executable, "-m", "bench.profile_calls", "server", engine, kind]
        if profile:
            argv.append(profile)
        if pin is not None:
            argv = ["taskset", "-c", str(pin)] + argv
        self.process = subprocess.Popen(
            argv,
            cwd=str(REPO_ROOT),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{engine} {kind} server printed {line!r}, not a port")
        self.port = int(line)

    def cpu_ns(self) -> int:
        """Return the CPU time of all the server's threads so far, in nanoseconds."""
        total = 0
        for path in glob.glob(f"/proc/{self.process.pid}/task/*/schedstat"):
            try:
                with open(path) as stat:
                    total += int(stat.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
        return total

    def stop(self) -> None:
        try:
            self.process.stdin.close()  # type: ignore[union-attr]
            self.process.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            self.process.kill()
            self.process.wait(timeout=5)


def _connect(engine: str, kind: str, port: int) -> Any:
    if engine == "ours":
        import rpyc_engine
        from rpyc_engine import classic

        if kind == "classic":
            return classic.connect("127.0.0.1", port)
        return rpyc_engine.connect("127.0.0.1", port)
    import rpyc

    if kind == "classic":
        return rpyc.classic.connect("127.0.0.1", port)
    return rpyc.connect("127.0.0.1", port)


def _floor_call(port: int) -> Callable[[], None]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * 16

    def once() -> None:
        sock.sendall(payload)
        received = 0
        while received < 16:
            received += len(sock.recv(64))

    return once


def _call(kind: str, classic: Any, service: Any) -> Callable[[], Any]:
    if kind == "ping":
        return classic.ping
    if kind == "held":
        return classic.modules.os.getpid
    if kind == "chain":
        return lambda: classic.modules.os.getpid()
    return lambda: service.root.getpid()


def _batch(call: Callable[[], Any], server: Server, calls: int) -> tuple:
    """Run ``calls`` calls; return (wall µs, client CPU µs, server CPU µs) per call."""
    cpu0, srv0, wall0 = time.process_time(), server.cpu_ns(), time.perf_counter()
    for _ in range(calls):
        call()
    wall1, cpu1, srv1 = time.perf_counter(), time.process_time(), server.cpu_ns()
    return (
        (wall1 - wall0) / calls * 1e6,
        (cpu1 - cpu0) / calls * 1e6,
        (srv1 - srv0) / calls / 1e3,
    )


def compare(kinds: List[str], calls: int, repeat: int, pin: Optional[int]) -> None:
    if pin is not None:
        os.sched_setaffinity(0, {pin})
    servers: Dict[tuple, Server] = {}
    conns: List[Any] = []
    try:
        for engine in ("ours", "stock"):
            for kind in ("classic", "service"):
                servers[engine, kind] = Server(engine, kind, pin)
        servers["floor", "echo"] = Server("ours", "echo", pin)
        targets: Dict[str, Dict[str, tuple]] = {"ours": {}, "stock": {}}
        for engine in ("ours", "stock"):
            classic = _connect(engine, "classic", servers[engine, "classic"].port)
            service = _connect(engine, "service", servers[engine, "service"].port)
            conns += [classic, service]
            for kind in kinds:
                server = servers[engine, "service" if kind == "root" else "classic"]
                targets[engine][kind] = (_call(kind, classic, service), server)
        floor = (_floor_call(servers["floor", "echo"].port), servers["floor", "echo"])
        results: Dict[tuple, List[tuple]] = {}
        for kind in kinds + ["floor"]:
            for engine in ("ours", "stock"):
                if kind == "floor" and engine == "stock":
                    continue
                call, _ = floor if kind == "floor" else targets[engine][kind]
                for _ in range(200):
                    call()  # warm up
            for _ in range(repeat):
                for engine in ("ours", "stock"):
                    if kind == "floor" and engine == "stock":
                        continue
                    call, server = floor if kind == "floor" else targets[engine][kind]
                    results.setdefault((engine, kind), []).append(
                        _batch(call, server, calls)
                    )
        _report(results, kinds, calls, repeat, pin)
    finally:
        for conn in conns:
            try:
                conn.close()
            except Exception:
                pass
        for server in servers.values():
            server.stop()


def _report(
    results: Dict[tuple, List[tuple]],
    kinds: List[str],
    calls: int,
    repeat: int,
    pin: Optional[int],
) -> None:
    where = f"pinned to CPU {pin}" if pin is not None else "unpinned"
    print(f"# {calls} calls x {repeat} batches, medians, {where}, load {_load()}")
    print(
        f"{'kind':6} {'engine':6} {'wall µs':>8} {'calls/s':>8} {'cli CPU':>8} "
        f"{'srv CPU':>8} {'sum CPU':>8}   ratio stock/ours: wall  CPU"
    )

    def medians(rows: List[tuple]) -> tuple:
        wall, cli, srv = zip(*rows)
        sums = [c + s for c, s in zip(cli, srv)]
        return (
            statistics.median(wall),
            statistics.median(cli),
            statistics.median(srv),
            statistics.median(sums),
        )

    for kind in kinds + ["floor"]:
        ours = medians(results["ours", kind])
        line = ""
        stock_rows = results.get(("stock", kind))
        if stock_rows:
            stock = medians(stock_rows)
            line = f"   {stock[0] / ours[0]:5.2f}x {stock[3] / ours[3]:5.2f}x"
        for engine, row in (("ours", ours), ("stock", stock if stock_rows else None)):
            if row is None:
                continue
            wall, cli, srv, total = row
            print(
                f"{kind:6} {engine:6} {wall:8.1f} {1e6 / wall:8.0f} {cli:8.1f} "
                f"{srv:8.1f} {total:8.1f}" + (line if engine == "ours" else "")
            )


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def profile(directory: str, kinds: List[str], calls: int) -> None:
    """Profile our client and our classic and service servers with cProfile."""
    os.makedirs(directory, exist_ok=True)
    server_files = {}
    servers = {}
    for kind in ("classic", "service"):
        server_files[kind] = os.path.join(
            os.path.abspath(directory), f"server-{kind}.prof"
        )
        servers[kind] = Server("ours", kind, None, server_files[kind])
    profiler = cProfile.Profile()
    try:
        classic = _connect("ours", "classic", servers["classic"].port)
        service = _connect("ours", "service", servers["service"].port)
        for kind in kinds:
            call = _call(kind, classic, service)
            call()
            profiler.enable()
            for _ in range(calls):
                call()
            profiler.disable()
        classic.close()
        service.close()
    finally:
        for server in servers.values():
            server.stop()
    profiler.dump_stats(os.path.join(directory, "client.prof"))
    print(f"wrote client.prof and server-*.prof to {directory}")


def main(argv: List[str]) -> None:
    if argv[:1] == ["server"]:
        server_main(argv[1], argv[2], argv[3] if len(argv) > 3 else None)
        return
    parser = argparse.ArgumentParser(prog="python3 -m bench.profile_calls")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pin", type=int, default=None)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cprofile", default=None)
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.kinds.split(",") if kind]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    if args.cprofile:
        profile(args.cprofile, kinds, args.calls)
    else:
        compare(kinds, args.calls, args.repeat, args.pin)


if __name__ == "__main__":
    main(sys.argv[1:])
