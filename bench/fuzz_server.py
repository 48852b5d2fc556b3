"""Fuzz a live engine server while a well-behaved client checks its calls.

Usage::

    python3 bench/fuzz_server.py --cases 200000 --seconds 600       # long run
    python3 bench/fuzz_server.py --cases 5000 --clients 4 --seed 3  # short run
    python3 bench/fuzz_server.py --deployed --cases 20000      # plus a deployed server

The target is a ``ThreadedServer`` serving `FuzzTargetService` on 127.0.0.1 in a child
process (``--serve`` mode of this script), so its RSS and a crash are seen from outside.
With ``--deployed`` a second target is the engine's zero-deploy server started with
``DeployedServer(plumbum.local)``. Its raw clients reach it through channels of the
deploy's multiplexer (``open_socket()``), so the multiplexer is fuzzed too. It serves
``VoidService``, not ``ExplorerService``, because random calls to the explorer's
``delete``, ``rename`` or console ``run`` could reach real files of the user running
the script. Its well-behaved client sends PING with random data.

Several raw-socket clients each open a connection and fetch the root object's id. Then
they send generated cases: valid requests with random handler codes and arguments (some
naming the root object or random object ids), mutated payloads (byte flips, insertions,
deletions, truncation), valid frames written in random splits, headers declaring lengths
over the frame cap, zlib bombs, random bytes, and half frames followed by a close. A
drain thread reads and discards whatever the server sends back. When the server drops a
connection (the expected reply to a protocol error) the client opens a new one.

Meanwhile one well-behaved client keeps calling ``add``, ``echo`` and ``size`` on each
target and checks every result. The run fails (exit status 1) when a well-behaved call
returns a wrong value or raises, when it takes longer than ``--call-timeout`` (a hang),
or when the server process exits. The report gives cases per second, the number of
checked calls and the server's RSS sampled once a second, whose growth stays bounded
because every frame is capped at ``FUZZ_MAX_FRAME_SIZE``.

One case is one generated input written to the server; a case that makes the server drop
the connection also costs a reconnect. ``bench/fuzz_decoder.py`` fuzzes the decoders
alone, in-process and far faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rpyc_engine import Service, connect, connect_socket  # noqa: E402
from rpyc_engine.protocol import messages, wire  # noqa: E402
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame  # noqa: E402

FUZZ_MAX_FRAME_SIZE = 256 * 1024
SOCKET_TIMEOUT = 10.0
MAX_HANDLER_CODE = 24
# Pause of the well-behaved client between rounds, leaving server time for the fuzz.
CHECK_PAUSE = 0.002
# Names tried by GETATTR, CALLATTR and friends: exposed ones, safe dunders and junk.
ATTRIBUTE_NAMES = (
    "add", "echo", "size", "exposed_add", "__class__", "__doc__", "__len__", "__str__",
    "__dict__", "_secret", "nothing", "", "x" * 300,
)  # fmt: skip
FRAME_HEADER = struct.Struct("!LB")


class FuzzTargetService(Service):
    """The fuzzed server's root: pure functions, so a wrong result is detectable."""

    def exposed_add(self, a: Any, b: Any) -> Any:
        return a + b

    def exposed_echo(self, value: Any) -> Any:
        return value

    def exposed_size(self, data: bytes) -> int:
        return len(data)


# -- case generation -------------------------------------------------------------------


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Return a random brine-dumpable value, nested at most three levels."""
    kind = rng.randrange(10 if depth < 3 else 8)
    if kind == 0:
        return rng.choice((None, True, False, Ellipsis, NotImplemented))
    if kind == 1:
        return rng.randint(-(2**70), 2**70)
    if kind == 2:
        return rng.randint(-50, 200)
    if kind == 3:
        return rng.uniform(-1e9, 1e9)
    if kind == 4:
        return rng.randbytes(rng.randrange(40))
    if kind == 5:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(20)))
    if kind == 6:
        return rng.choice(ATTRIBUTE_NAMES)
    if kind == 7:
        return slice(rng.randrange(5), rng.randrange(9), None)
    if kind == 8:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randrange(5)))
    return frozenset(rng.randint(0, 99) for _ in range(rng.randrange(4)))


def random_boxed(rng: random.Random, root_id: Optional[tuple]) -> Any:
    """Return one boxed item: a plain value, a reference, or a tuple of boxed items."""
    kind = rng.randrange(5)
    if kind == 0 and root_id is not None:
        return (wire.LABEL_LOCAL_REF, root_id)
    if kind == 1:
        fake = ("builtins.object", rng.getrandbits(48), rng.getrandbits(48))
        return (rng.choice((wire.LABEL_LOCAL_REF, wire.LABEL_REMOTE_REF)), fake)
    if kind == 2:
        return (wire.LABEL_TUPLE, tuple(random_boxed(rng, root_id) for _ in range(3)))
    if kind == 3:
        return (rng.randrange(8), random_value(rng))
    return (wire.LABEL_VALUE, random_value(rng))


def random_request(rng: random.Random, root_id: Optional[tuple]) -> bytes:
    """Return the payload of a request with a random handler code and arguments."""
    handler = rng.randrange(MAX_HANDLER_CODE + 1)
    target = (wire.LABEL_LOCAL_REF, root_id) if root_id else random_boxed(rng, None)
    args: Tuple[Any, ...] = (target,)
    if rng.random() < 0.7:
        args += ((wire.LABEL_VALUE, rng.choice(ATTRIBUTE_NAMES)),)
    args += tuple(random_boxed(rng, root_id) for _ in range(rng.randrange(3)))
    boxed = (
        (wire.LABEL_TUPLE, args) if rng.random() < 0.9 else random_boxed(rng, root_id)
    )
    seq = rng.randrange(2**31)
    # CLOSE is valid but ends the connection; keep it rare so cases stay cheap.
    if handler == wire.HANDLE_CLOSE and rng.random() < 0.9:
        handler = wire.HANDLE_PING
    return messages.encode_request(seq, handler, boxed)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Return ``data`` with one to four random byte-level edits."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        edit = rng.randrange(4)
        position = rng.randrange(len(buffer) + 1)
        if edit == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif edit == 1:
            buffer[position:position] = rng.randbytes(rng.randint(1, 8))
        elif edit == 2 and buffer:
            del buffer[position : position + rng.randint(1, 8)]
        else:
            del buffer[position:]
    return bytes(buffer)


@dataclasses.dataclass
class Case:
    """One input for a raw client: chunks to write, and whether to close afterwards."""

    kind: str
    chunks: List[bytes]
    close_after: bool = False


@functools.lru_cache(maxsize=None)
def _zlib_bombs() -> Tuple[bytes, ...]:
    """Return compressed frames that inflate to 2 to 64 times the frame cap."""
    bombs = []
    for factor in (2, 8, 64):
        body = zlib.compress(b"\x00" * (FUZZ_MAX_FRAME_SIZE * factor), 9)
        bombs.append(FRAME_HEADER.pack(len(body), 1) + body)
    return tuple(bombs)


def _split(rng: random.Random, data: bytes) -> List[bytes]:
    cuts = sorted(
        rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6)))
    )
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)])]


def make_case(rng: random.Random, root_id: Optional[tuple]) -> Case:
    """Generate one case; about half of them are well-formed frames.

    Cases that may leave the frame boundaries unknown (a mutated header, random bytes)
    close the connection afterwards; otherwise the server would read the following
    cases as the body of one long frame and never parse them.
    """
    roll = rng.random()
    if roll < 0.40:
        return Case("valid-request", [encode_frame(random_request(rng, root_id))])
    if roll < 0.50:
        frame = encode_frame(random_request(rng, root_id))
        return Case("random-split", _split(rng, frame) if len(frame) > 1 else [frame])
    if roll < 0.75:
        payload = mutate(rng, random_request(rng, root_id))
        return Case("mutated-payload", [encode_frame(payload, None)])
    if roll < 0.85:
        frame = mutate(rng, encode_frame(random_request(rng, root_id)))
        return Case("mutated-frame", [frame], close_after=True)
    if roll < 0.90:
        declared = rng.randint(FUZZ_MAX_FRAME_SIZE + 1, 2**32 - 1)
        return Case("oversize-length", [FRAME_HEADER.pack(declared, rng.randrange(2))])
    if roll < 0.93:
        return Case("zlib-bomb", [rng.choice(_zlib_bombs())])
    if roll < 0.97:
        return Case(
            "random-bytes", [rng.randbytes(rng.randint(1, 64))], close_after=True
        )
    frame = encode_frame(random_request(rng, root_id))
    return Case(
        "half-frame-close", [frame[: rng.randrange(len(frame))]], close_after=True
    )


# -- raw clients -----------------------------------------------------------------------


def _read_message(sock: socket.socket, decoder: FrameDecoder) -> Tuple[int, int, Any]:
    pending: List[bytes] = []
    while not pending:
        data = sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection before replying")
        pending.extend(decoder.feed(data))
    return messages.decode_message(pending[0])


def fetch_root_id(sock: socket.socket) -> Optional[tuple]:
    """Send GETROOT on a fresh raw connection and return the root's id pack, or None."""
    sock.sendall(
        encode_frame(
            messages.encode_request(0, wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ()))
        )
    )
    decoder = FrameDecoder(max_frame_size=FUZZ_MAX_FRAME_SIZE)
    msg_type, _, body = _read_message(sock, decoder)
    if msg_type == wire.MSG_REPLY and body[0] == wire.LABEL_REMOTE_REF:
        return tuple(body[1])
    return None


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


class RawClient:
    """Writes cases over one connection, reconnecting when the server drops it."""

    def __init__(
        self, open_socket: Callable[[], socket.socket], rng: random.Random
    ) -> None:
        self.open_socket = open_socket
        self.rng = rng
        self.counts: Dict[str, int] = {}
        self.reconnects = 0
        self._sock: Optional[socket.socket] = None
        self._drainer: Optional[threading.Thread] = None
        self._root_id: Optional[tuple] = None

    def _connect(self) -> None:
        sock = self.open_socket()
        sock.settimeout(SOCKET_TIMEOUT)
        self._root_id = fetch_root_id(sock)
        self._drainer = threading.Thread(target=_drain, args=(sock,), daemon=True)
        self._drainer.start()
        self._sock = sock
        self.reconnects += 1

    def close(self) -> None:
        """Close the current connection and wait for its drain thread."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # Join before close: a closed descriptor number can be reused by another
        # client's new socket while the drain thread still waits on it.
        if self._drainer is not None:
            self._drainer.join(SOCKET_TIMEOUT)
            self._drainer = None
        sock.close()

    def send_case(self) -> None:
        """Generate one case and write it, reopening a connection the server dropped."""
        if self._sock is None:
            self._connect()
        case = make_case(self.rng, self._root_id)
        self.counts[case.kind] = self.counts.get(case.kind, 0) + 1
        try:
            for chunk in case.chunks:
                self._sock.sendall(chunk)
        except OSError:
            case.close_after = True
        if case.close_after or not self._drainer.is_alive():
            self.close()


# -- the well-behaved client -----------------------------------------------------------


@dataclasses.dataclass
class CheckStats:
    """Results of the well-behaved client: calls made and the first failure seen."""

    calls: int = 0
    failure: Optional[str] = None


def check_calls(
    conn: Any, rng: random.Random, stats: CheckStats, stop: threading.Event
) -> None:
    """Call the target's functions until ``stop`` is set, checking every result."""
    root = conn.root
    while not stop.is_set() and stats.failure is None:
        a, b = rng.randint(-(10**9), 10**9), rng.randint(-(10**9), 10**9)
        value = random_value(rng)
        data = rng.randbytes(rng.randrange(5000))
        try:
            results = (root.add(a, b), root.echo(value), root.size(data))
        except Exception as exc:  # any error of a well-behaved call is a finding
            stats.failure = f"call {stats.calls} raised {type(exc).__name__}: {exc}"
            return
        expected = (a + b, value, len(data))
        if not _same(results, expected):
            stats.failure = (
                f"call {stats.calls}: expected {expected!r}, got {results!r}"
            )
            return
        stats.calls += 3
        stop.wait(CHECK_PAUSE)


def _same(got: Any, expected: Any) -> bool:
    # NaN never equals itself; repr compares such values exactly enough here.
    return got == expected or repr(got) == repr(expected)


# -- the server side -------------------------------------------------------------------


def serve() -> None:
    """Run the fuzz target on a free loopback port and print the port (``--serve``)."""
    from rpyc_engine.server import ThreadedServer

    server = ThreadedServer(
        FuzzTargetService,
        port=0,
        protocol_config={
            "max_frame_size": FUZZ_MAX_FRAME_SIZE,
            "log_exceptions": False,
        },
    )
    server.listen()
    print(server.port, flush=True)
    server.start()


def start_server_process() -> Tuple[subprocess.Popen, int]:
    """Start ``--serve`` mode in a child process and return it with its port."""
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait()
        raise RuntimeError(
            f"fuzz server did not start: its first output line was {line!r}"
        )
    return process, int(line)


def rss_kib(pid: int) -> Optional[int]:
    """Return the resident set size of ``pid`` in KiB, or None when it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def alive(pid: int) -> bool:
    """Return True while process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# -- the run ---------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """A server under fuzz: how to reach it raw, how to check it, and its process."""

    name: str
    pid: int
    open_socket: Callable[[], socket.socket]
    open_connection: Callable[[], Any]
    service_calls: bool  # whether the well-behaved client can call add/echo/size


@dataclasses.dataclass
class Report:
    """Outcome of one run."""

    cases: int = 0
    seconds: float = 0.0
    counts: Dict[str, int] = dataclasses.field(default_factory=dict)
    checked_calls: int = 0
    reconnects: int = 0
    rss_samples: Dict[str, List[int]] = dataclasses.field(default_factory=dict)
    failures: List[str] = dataclasses.field(default_factory=list)

    def rss_growth_kib(self, name: str) -> int:
        """Return the peak RSS of target ``name`` minus its first sample, in KiB."""
        samples = self.rss_samples.get(name) or [0]
        return max(samples) - samples[0]


def check_pings(
    conn: Any, rng: random.Random, stats: CheckStats, stop: threading.Event
) -> None:
    """Send PING with random data until ``stop`` is set (ping() checks the echo)."""
    while not stop.is_set() and stats.failure is None:
        try:
            conn.ping(random_value(rng), timeout=SOCKET_TIMEOUT)
        except Exception as exc:  # any error of a well-behaved call is a finding
            stats.failure = f"ping {stats.calls} raised {type(exc).__name__}: {exc}"
            return
        stats.calls += 1
        stop.wait(CHECK_PAUSE)


class _CaseBudget:
    """Hands out cases to the raw clients until the count or the time runs out."""

    def __init__(self, cases: int, deadline: float) -> None:
        self.cases = cases
        self.deadline = deadline
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.cases or time.monotonic() >= self.deadline:
                return False
            self.taken += 1
            return True


def _raw_loop(client: RawClient, budget: _CaseBudget, failures: List[str]) -> None:
    try:
        while budget.take():
            client.send_case()
    except (
        Exception
    ) as exc:  # a raw client that cannot reconnect means the server is gone
        failures.append(f"raw client stopped: {type(exc).__name__}: {exc}")
        budget.deadline = 0.0
    finally:
        client.close()


def run_fuzz(
    targets: Sequence[Target],
    cases: int,
    seconds: float,
    clients: int = 4,
    seed: int = 0,
    sample_every: float = 1.0,
) -> Report:
    """Fuzz ``targets`` with ``clients`` raw clients each, up to ``cases`` cases."""
    report = Report(rss_samples={target.name: [] for target in targets})
    stop = threading.Event()
    budget = _CaseBudget(cases, time.monotonic() + seconds)
    checkers = []
    for index, target in enumerate(targets):
        stats = CheckStats()
        check = check_calls if target.service_calls else check_pings
        conn = target.open_connection()
        thread = threading.Thread(
            target=check, args=(conn, random.Random(seed * 1000 + index), stats, stop)
        )
        checkers.append((target, conn, stats, thread))
    raw_clients = [
        RawClient(
            targets[i % len(targets)].open_socket, random.Random(seed * 1000 + 100 + i)
        )
        for i in range(clients * len(targets))
    ]
    raw_threads = [
        threading.Thread(target=_raw_loop, args=(client, budget, report.failures))
        for client in raw_clients
    ]
    started = time.monotonic()
    for thread in [entry[3] for entry in checkers] + raw_threads:
        thread.start()
    while any(thread.is_alive() for thread in raw_threads):
        for target in targets:
            sample = rss_kib(target.pid)
            if sample is None or not alive(target.pid):
                budget.deadline = 0.0
            else:
                report.rss_samples[target.name].append(sample)
        for thread in raw_threads:
            thread.join(sample_every / len(raw_threads))
    report.seconds = time.monotonic() - started
    for target in targets:
        if not alive(target.pid):
            report.failures.append(f"{target.name}: server process {target.pid} exited")
    stop.set()
    for target, conn, stats, thread in checkers:
        thread.join(SOCKET_TIMEOUT * 2)
        if thread.is_alive():
            report.failures.append(f"{target.name}: well-behaved client hung")
        if stats.failure:
            report.failures.append(f"{target.name}: {stats.failure}")
        report.checked_calls += stats.calls
        conn.close()
    report.cases = budget.taken
    for client in raw_clients:
        report.reconnects += client.reconnects
        for kind, count in client.counts.items():
            report.counts[kind] = report.counts.get(kind, 0) + count
    return report


# -- command line ----------------------------------------------------------------------


def threaded_target(
    process: subprocess.Popen, port: int, call_timeout: float
) -> Target:
    """Describe the ``--serve`` child listening on ``port`` as a fuzz target."""
    config = {"sync_request_timeout": call_timeout}
    return Target(
        name="threaded",
        pid=process.pid,
        open_socket=lambda: socket.create_connection(
            ("127.0.0.1", port), SOCKET_TIMEOUT
        ),
        open_connection=lambda: connect("127.0.0.1", port, config=config),
        service_calls=True,
    )


def deployed_target(deployed: Any, call_timeout: float) -> Target:
    """Describe a ``DeployedServer`` on this machine as a fuzz target."""
    config = {"sync_request_timeout": call_timeout}
    return Target(
        name="deployed",
        pid=deployed.remote_pid,
        open_socket=deployed.open_socket,
        open_connection=lambda: connect_socket(deployed.open_socket(), config=config),
        service_calls=False,
    )


def print_report(report: Report) -> None:
    """Print the figures of one run."""
    rate = report.cases / report.seconds if report.seconds else 0.0
    print(f"cases: {report.cases} in {report.seconds:.1f} s ({rate:,.0f} cases/s)")
    for kind, count in sorted(report.counts.items()):
        print(f"  {kind:18} {count}")
    print(f"connections opened by raw clients: {report.reconnects}")
    print(f"checked well-behaved calls: {report.checked_calls}")
    for name, samples in report.rss_samples.items():
        if samples:
            print(
                f"{name} server RSS: start {samples[0] / 1024:.1f} MiB, "
                f"peak {max(samples) / 1024:.1f} MiB, end {samples[-1] / 1024:.1f} MiB "
                f"({len(samples)} samples)"
            )
    for failure in report.failures:
        print(f"FAILURE: {failure}")


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", type=int, default=200_000, help="cases to send in all"
    )
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="maximum run time, s"
    )
    parser.add_argument("--clients", type=int, default=4, help="raw clients per target")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generator")
    parser.add_argument(
        "--call-timeout", type=float, default=10.0,
        help="seconds a well-behaved call may take before it counts as a hang",
    )  # fmt: skip
    parser.add_argument(
        "--deployed", action="store_true",
        help="also fuzz a DeployedServer on this machine (plumbum local)",
    )  # fmt: skip
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the fuzzer from the command line; return the exit status."""
    args = _parse_args(argv)
    if args.serve:
        serve()
        return 0
    process, port = start_server_process()
    deployed = None
    try:
        targets = [threaded_target(process, port, args.call_timeout)]
        if args.deployed:
            from plumbum import local

            from rpyc_engine.deploy import DeployedServer

            deployed = DeployedServer(
                local, service="rpyc_engine.services.base.VoidService"
            )
            targets.append(deployed_target(deployed, args.call_timeout))
        print(f"seed {args.seed}, {args.clients} raw clients per target: "
              + ", ".join(target.name for target in targets), flush=True)  # fmt: skip
        report = run_fuzz(targets, args.cases, args.seconds, args.clients, args.seed)
    finally:
        if deployed is not None:
            deployed.close()
        process.kill()
        process.wait()
    print_report(report)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
