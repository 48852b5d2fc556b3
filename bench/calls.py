"""Trivial call latency and calls per second, over TCP and through an SSH deployment.

Each engine's client talks to its own server in another process (our client to our
server, stock client to stock server); mixed pairs are extra rows. The floor is a raw
TCP round trip of 16 bytes to an echo server, with ``TCP_NODELAY`` on both ends.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any, Callable, Dict, Iterator, List

from bench.common import (
    HIGHER,
    Context,
    Figure,
    Side,
    describe_error,
    per_call_us,
    side,
    start_server,
    stop_server,
)

FAMILY = "calls"


@contextlib.contextmanager
def servers(*specs: tuple) -> Iterator[Dict[tuple, int]]:
    """Start one server process per ``(engine, kind)`` and yield their ports."""
    started: List[Any] = []
    try:
        ports = {}
        for spec in specs:
            process, port = start_server(*spec)
            started.append(process)
            ports[spec] = port
        yield ports
    finally:
        for process in started:
            stop_server(process)


def classic_client(engine: str, port: int) -> Any:
    if engine == "ours":
        from rpyc_engine import classic

        return classic.connect("127.0.0.1", port)
    import rpyc

    return rpyc.classic.connect("127.0.0.1", port)


def service_client(engine: str, port: int) -> Any:
    if engine == "ours":
        import rpyc_engine

        return rpyc_engine.connect("127.0.0.1", port)
    import rpyc

    return rpyc.connect("127.0.0.1", port)


def raw_round_trip_us(port: int, calls: int, repeat: int) -> List[float]:
    """Microseconds per 16-byte send + receive on loopback: the floor of one RT."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"x" * 16

        def once() -> None:
            sock.sendall(payload)
            received = 0
            while received < len(payload):
                received += len(sock.recv(64))

        return per_call_us(once, calls, repeat)


def call_kinds(classic: Any, service: Any = None) -> Dict[str, Callable[[], Any]]:
    """Return the trivial calls as callables on open connections.

    Without ``service`` (a classic root has no ``getpid``), the service rows are
    left out.
    """
    kinds = {
        "server-cpu": classic.modules.time.process_time,
        "ping": classic.ping,
        "held": classic.modules.os.getpid,
        "chain": lambda: classic.modules.os.getpid(),
    }
    if service is not None:
        kinds["root"] = lambda: service.root.getpid()
        kinds["held-root"] = service.root.getpid
    return kinds


CALL_ROWS = [
    # key, label, round trips per call
    ("ping", "`conn.ping()`", 1),
    ("held", "`getpid()` on a held netref (`os.getpid`)", 1),
    ("chain", "`conn.modules.os.getpid()`, full chain", 2),
    ("root", "`conn.root.getpid()`, service method, full", 2),
    ("held-root", "held `conn.root.getpid` bound method", 1),
]


def run(ctx: Context) -> List[Figure]:
    figures = tcp_figures(ctx)
    figures += ssh_figures(ctx)
    return figures


CPU_KEYS = ("ping", "held", "chain")


def interleaved(
    calls: Dict[str, Dict[str, Callable[[], Any]]], batch: int, repeat: int
) -> Dict[str, Dict[str, Side]]:
    """Measure µs/call of each ``calls[side][key]``, alternating the sides per sample.

    Alternating batches (ours, stock, ours, stock, ...) spreads a burst of load from
    other processes over both sides instead of over whichever happened to run then.
    Where ``calls[side]`` has a ``"server-cpu"`` probe (the classic server's
    ``time.process_time``), the CPU time per call of client plus server is recorded
    under ``"cpu-KEY"``: it depends far less on the machine's load than wall time.
    """
    samples: Dict[str, Dict[str, Side]] = {name: {} for name in calls}
    keys = [key for key, _label, _trips in CALL_ROWS]
    for key in keys:
        active = {name: kinds[key] for name, kinds in calls.items() if key in kinds}
        results = {name: Side() for name in active}
        cpu = {name: Side() for name in active}
        for _ in range(repeat):
            for name, call in active.items():
                if results[name].error:
                    continue
                probe = calls[name].get("server-cpu") if key in CPU_KEYS else None
                try:
                    started = time.process_time(), probe() if probe else 0.0
                    results[name].samples += per_call_us(call, batch, 1)
                    ended = time.process_time(), probe() if probe else 0.0
                except Exception as exc:
                    results[name] = Side(error=describe_error(exc))
                    continue
                spent = (ended[0] - started[0]) + (ended[1] - started[1])
                cpu[name].samples.append(spent / (batch + 1) * 1e6)
        for name, result in results.items():
            samples[name][key] = result
            if calls[name].get("server-cpu") and key in CPU_KEYS:
                samples[name]["cpu-" + key] = cpu[name]
    return samples


def open_pair(connect: Callable[[], tuple], keep: List[Any]) -> Any:
    """Open ``(classic, service)`` connections; return their call kinds or the error."""
    try:
        classic, service = connect()
    except Exception as exc:
        return Side(error=describe_error(exc))
    keep += [classic, service]
    return call_kinds(classic, service)


def tcp_figures(ctx: Context) -> List[Figure]:
    settings = ctx.settings
    specs = [
        ("ours", "classic"),
        ("stock", "classic"),
        ("ours", "service"),
        ("stock", "service"),
        ("ours", "echo"),
    ]
    opened: List[Any] = []
    with servers(*specs) as ports:
        floor = side(
            lambda: raw_round_trip_us(
                ports[("ours", "echo")], settings.calls_per_batch, settings.repeat
            )
        )
        pairs = {
            "ours": ("ours", "ours"),
            "stock": ("stock", "stock"),
            "mixed-ours": ("ours", "stock"),
            "mixed-stock": ("stock", "ours"),
        }
        kinds = {}
        try:
            for name, (client, server) in pairs.items():
                kinds[name] = open_pair(
                    lambda c=client, s=server: (
                        classic_client(c, ports[(s, "classic")]),
                        service_client(c, ports[(s, "service")]),
                    ),
                    opened,
                )
            failed = {
                name: value for name, value in kinds.items() if isinstance(value, Side)
            }
            working = {
                name: value for name, value in kinds.items() if name not in failed
            }
            for name in ("mixed-ours", "mixed-stock"):
                if name in working:
                    working[name] = {
                        key: working[name][key] for key in ("ping", "held")
                    }
            samples = interleaved(working, settings.calls_per_batch, settings.repeat)
        finally:
            for conn in opened:
                conn.close()
    for name, error in failed.items():
        samples[name] = {key: error for key, _label, _trips in CALL_ROWS}
    figures = call_figures("TCP", samples, floor)
    for key, label, trips in CALL_ROWS[:3]:
        figures.append(
            Figure(
                FAMILY,
                f"{label} ({trips} RT), TCP: CPU time per call, client + server",
                "µs/call",
                ours=samples["ours"].get("cpu-" + key, Side(text="n/a")),
                stock=samples["stock"].get("cpu-" + key, Side(text="n/a")),
                note="process CPU time (CLOCK_PROCESS_CPUTIME_ID) of the client and of "
                "the classic server over the same batches, divided by the calls; "
                "unlike wall "
                "time it barely moves with the load of other processes",
            )
        )
    for key, label, _trips in CALL_ROWS[:2]:
        figures.append(
            Figure(
                FAMILY,
                f"{label}, mixed pairs (ours: our client → stock server; "
                "rpyc: stock client → our server)",
                "µs/call",
                ours=samples["mixed-ours"][key],
                stock=samples["mixed-stock"][key],
            )
        )
    return figures


def call_figures(
    transport: str, samples: Dict[str, Dict[str, Side]], floor: Any
) -> List[Figure]:
    figures = []
    for key, label, trips in CALL_ROWS:
        if key not in samples["ours"] and key not in samples["stock"]:
            continue
        ours, stock = samples["ours"][key], samples["stock"][key]
        row_floor = None
        if floor is not None and floor.samples:
            row_floor = Side(samples=[value * trips for value in floor.samples])
        figures.append(
            Figure(
                FAMILY,
                f"{label} ({trips} RT), {transport}",
                "µs/call",
                ours=ours,
                stock=stock,
                floor=row_floor,
            )
        )
        figures.append(
            Figure(
                FAMILY,
                f"↳ throughput, {transport}",
                "calls/s",
                better=HIGHER,
                ours=_throughput(ours),
                stock=_throughput(stock),
                floor=_throughput(row_floor) if row_floor else None,
            )
        )
    return figures


def _throughput(latency: Side) -> Side:
    if latency.error or not latency.samples:
        return Side(error=latency.error)
    return Side(samples=[1e6 / value for value in latency.samples])


def ssh_figures(ctx: Context) -> List[Figure]:
    """The same calls through one deployment per engine on the loopback sshd."""
    settings = ctx.settings
    opened: List[Any] = []
    kinds: Dict[str, Any] = {}
    try:
        server = ctx.sshd()
        for engine in ("ours", "stock"):
            try:
                machine = server.ssh_machine()
                opened.append(machine)
                deployment = _deploy(engine, machine)
                opened.append(deployment)
                kinds[engine] = call_kinds(deployment.classic_connect())
            except Exception as exc:
                kinds[engine] = Side(error=describe_error(exc))
        working = {
            name: value for name, value in kinds.items() if not isinstance(value, Side)
        }
        # A round trip through ssh costs several times one over TCP: smaller batches.
        batch = max(100, settings.calls_per_batch // 4)
        samples = interleaved(working, batch, settings.repeat)
    finally:
        for item in reversed(opened):
            item.close()
    for name, value in kinds.items():
        if isinstance(value, Side):
            samples[name] = {key: value for key, _label, _trips in CALL_ROWS}
    figures = call_figures("through an SSH deployment", samples, None)
    for figure in figures:
        if "RT)" in figure.name:
            figure.note = (
                "ours: channels multiplexed over the deploy's ssh session; "
                "rpyc: DeployedServer's `ssh -L` tunnel"
            )
    return figures


def _deploy(engine: str, machine: Any) -> Any:
    if engine == "ours":
        from rpyc_engine.deploy import DeployedServer

        return DeployedServer(machine)
    from rpyc.utils.zerodeploy import DeployedServer as StockDeployedServer

    return StockDeployedServer(machine)
