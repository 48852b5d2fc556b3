"""Trivial call latency and calls per second, over TCP and through an SSH deployment.

Each engine's client talks to its own server in another process (our client to our
server, stock client to stock server); mixed pairs are extra rows. The floor is a raw
TCP round trip of 16 bytes to an echo server, with ``TCP_NODELAY`` on both ends.
"""

from __future__ import annotations

import contextlib
import socket
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

    Without ``service`` (a classic root has no ``getpid``) the service rows are left out.
    """
    kinds = {
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


def tcp_figures(ctx: Context) -> List[Figure]:
    settings = ctx.settings
    specs = [("ours", "classic"), ("stock", "classic"), ("ours", "service"),
             ("stock", "service"), ("ours", "echo")]  # fmt: skip
    with servers(*specs) as ports:
        floor = side(lambda: raw_round_trip_us(
            ports[("ours", "echo")], settings.calls_per_batch, settings.repeat
        ))  # fmt: skip
        samples = {}
        for engine in ("ours", "stock"):
            samples[engine] = measure_engine(
                lambda e=engine: (
                    classic_client(e, ports[(e, "classic")]),
                    service_client(e, ports[(e, "service")]),
                ),
                ctx,
            )
        mixed = {
            "ours": measure_engine(
                lambda: (classic_client("ours", ports[("stock", "classic")]),
                         service_client("ours", ports[("stock", "service")])),
                ctx, keys=("ping", "held"),
            ),
            "stock": measure_engine(
                lambda: (classic_client("stock", ports[("ours", "classic")]),
                         service_client("stock", ports[("ours", "service")])),
                ctx, keys=("ping", "held"),
            ),
        }  # fmt: skip
    figures = call_figures("TCP", samples, floor)
    for key, label, _trips in CALL_ROWS[:2]:
        figures.append(Figure(
            FAMILY, f"{label}, mixed pairs (ours: our client → stock server; "
            "rpyc: stock client → our server)", "µs/call",
            ours=mixed["ours"][key], stock=mixed["stock"][key],
        ))  # fmt: skip
    return figures


def call_figures(transport: str, samples: Dict[str, Dict[str, Side]], floor: Any) -> List[Figure]:
    figures = []
    for key, label, trips in CALL_ROWS:
        ours, stock = samples["ours"][key], samples["stock"][key]
        row_floor = None
        if floor is not None and floor.samples:
            row_floor = Side(samples=[value * trips for value in floor.samples])
        figures.append(Figure(
            FAMILY, f"{label} ({trips} RT), {transport}", "µs/call",
            ours=ours, stock=stock, floor=row_floor,
        ))  # fmt: skip
        figures.append(Figure(
            FAMILY, f"↳ throughput, {transport}", "calls/s", better=HIGHER,
            ours=_throughput(ours), stock=_throughput(stock),
            floor=_throughput(row_floor) if row_floor else None,
        ))  # fmt: skip
    return figures


def _throughput(latency: Side) -> Side:
    if latency.error or not latency.samples:
        return Side(error=latency.error)
    return Side(samples=[1e6 / value for value in latency.samples])


def measure_engine(
    connect: Callable[[], tuple], ctx: Context, keys: tuple = ()
) -> Dict[str, Side]:
    """Open the connections, then measure each call kind; errors fill every row."""
    settings = ctx.settings
    try:
        classic, service = connect()
    except Exception as exc:
        error = Side(error=describe_error(exc))
        return {key: error for key, _label, _trips in CALL_ROWS}
    try:
        kinds = call_kinds(classic, service)
        return {
            key: side(lambda c=call: per_call_us(c, settings.calls_per_batch, settings.repeat))
            for key, call in kinds.items()
            if not keys or key in keys
        }
    finally:
        classic.close()
        service.close()


def ssh_figures(ctx: Context) -> List[Figure]:
    """The same calls through a deployment on the loopback sshd."""
    samples: Dict[str, Dict[str, Side]] = {}
    for engine in ("ours", "stock"):
        samples[engine] = _ssh_engine(ctx, engine)
    figures = []
    for key, label, trips in CALL_ROWS[:3]:
        ours, stock = samples["ours"][key], samples["stock"][key]
        figures.append(Figure(
            FAMILY, f"{label} ({trips} RT), through an SSH deployment", "µs/call",
            ours=ours, stock=stock,
            note="ours: channels multiplexed over the deploy's ssh session; "
            "rpyc: DeployedServer's `ssh -L` tunnel",
        ))  # fmt: skip
        figures.append(Figure(
            FAMILY, "↳ throughput, through an SSH deployment", "calls/s", better=HIGHER,
            ours=_throughput(ours), stock=_throughput(stock),
        ))  # fmt: skip
    return figures


def _ssh_engine(ctx: Context, engine: str) -> Dict[str, Side]:
    settings = ctx.settings
    keys = [key for key, _label, _trips in CALL_ROWS[:3]]
    try:
        server = ctx.sshd()
        machine = server.ssh_machine()
    except Exception as exc:
        error = Side(error=describe_error(exc))
        return {key: error for key in keys}
    try:
        deployment = _deploy(engine, machine)
        try:
            conn = deployment.classic_connect()
            kinds = call_kinds(conn)
            return {
                key: side(lambda c=kinds[key]: per_call_us(
                    c, settings.calls_per_batch, settings.repeat
                ))
                for key in keys
            }  # fmt: skip
        finally:
            deployment.close()
    except Exception as exc:
        error = Side(error=describe_error(exc))
        return {key: error for key in keys}
    finally:
        machine.close()


def _deploy(engine: str, machine: Any) -> Any:
    if engine == "ours":
        from rpyc_engine.deploy import DeployedServer

        return DeployedServer(machine)
    from rpyc.utils.zerodeploy import DeployedServer as StockDeployedServer

    return StockDeployedServer(machine)
