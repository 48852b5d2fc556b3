"""Long fuzz run of the wire decoders: brine.load, decode_message and FrameDecoder.

Usage::

    python3 bench/fuzz_decoder.py                      # 1,000,000 cases on 2 worker processes
    python3 bench/fuzz_decoder.py --cases 200000 --workers 1 --seed 7

Each case is one input pushed through one decoder. Inputs are random bytes (biased towards
brine tags), mutations of valid payloads (byte flips, insertions, deletions, truncation,
splices, huge length fields, deep nesting) and frame streams fed in random splits, some of
them mutated or carrying zlib bombs. A case passes when the decoder returns or raises a
``ProtocolError`` subclass: ``BrineError`` from ``brine.load``, ``ProtocolError`` from
``decode_message``, ``FramingError`` from ``FrameDecoder``. Unmutated frame streams must come
back unchanged, and on a sample of brine inputs the fast decoder and the reference decoder
in ``brine_strict`` must agree. Anything else counts as a failure: the script prints the
seed, case number and input, and exits with status 1.

The report gives cases per second per input kind and the peak RSS of the workers (from
``resource.getrusage``), which stays bounded because every decoder gets a small frame cap
and inputs are at most a few kilobytes.

This only fuzzes the sans-IO decoders in-process. NOTE: a fuzz run against a live server
(sockets, handlers, the connection layer) is not part of this script.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import struct
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rpyc_engine.protocol import brine, brine_strict, messages, vinegar, wire  # noqa: E402
from rpyc_engine.protocol.errors import BrineError, FramingError, ProtocolError  # noqa: E402
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame  # noqa: E402

FUZZ_MAX_FRAME_SIZE = 256 * 1024
MAX_REPORTED_FAILURES = 20
# Bytes that start brine items, weighted so random inputs reach deeper into the decoder.
TAG_BYTES = bytes(range(0x00, 0x20)) + bytes((0x50, 0x51, 0x7A, 0xEF, 0xF0, 0xFF))


def _random_bytes(rng: random.Random, size: int) -> bytes:
    return rng.getrandbits(8 * size).to_bytes(size, "little") if size else b""


def _sample_exception() -> object:
    try:
        try:
            {}["missing"]
        except KeyError as inner:
            raise ValueError("outer", [1, 2]) from inner
    except ValueError as exc:
        return vinegar.dump_exception(exc)


def build_corpus() -> List[bytes]:
    """Build valid message payloads covering every brine tag and message type."""
    id_pack = ("builtins.list", 140300085494032, 140300085494999)
    values = [
        None, True, False, NotImplemented, Ellipsis, 0, -48, 159, 160, -49, 2**70, -(3**300),
        1.5, float("nan"), -0.0, 1 + 2j, b"", b"abcd", b"x" * 300, "", "héllo", "s" * 300,
        (), (1,), (1, 2, 3, 4, 5), tuple(range(300)), frozenset({1, "a"}), slice(1, 10, None),
        ((((("deep",),),),),),
    ]
    payloads = [
        messages.encode_request(0, wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ())),
        messages.encode_request(44, wire.HANDLE_CLOSE, (wire.LABEL_VALUE, ())),
        messages.encode_request(
            7, wire.HANDLE_GETATTR, (wire.LABEL_TUPLE, ((wire.LABEL_LOCAL_REF, id_pack), (1, "x")))
        ),
        messages.encode_request(
            13,
            wire.HANDLE_CALL,
            (2, ((3, id_pack), (2, ((4, id_pack), (1, 6), (1, 7))), (1, (("k", 1),)))),
        ),
        messages.encode_reply(3, (wire.LABEL_REMOTE_REF, id_pack)),
        messages.encode_reply(200, (wire.LABEL_VALUE, tuple(values))),
        messages.encode_exception(32, wire.EXCEPTION_STOP_ITERATION),
        messages.encode_exception(5, _sample_exception()),
    ]
    payloads.extend(messages.encode_reply(index, (1, value)) for index, value in enumerate(values))
    return payloads


def _insert_deep_nesting(rng: random.Random, buffer: bytearray, position: int) -> None:
    # Depths around the default limit of 1000 nested containers.
    depth = rng.choice((8, 64, 999, 1000, 1001, 1500))
    buffer[position:position] = bytes((rng.choice((0x10, 0x19, 0x1A)),)) * depth


def _apply_mutation(rng: random.Random, buffer: bytearray, corpus: List[bytes]) -> None:
    position = rng.randint(0, len(buffer))
    last = max(0, min(position, len(buffer) - 1))
    choice = rng.randrange(16)
    if choice < 4 and buffer:  # overwrite a byte
        buffer[last] = rng.randrange(256)
    elif choice < 6 and buffer:  # overwrite a byte with a tag byte
        buffer[last] = rng.choice(TAG_BYTES)
    elif choice < 8:  # insert a tag byte
        buffer[position:position] = bytes((rng.choice(TAG_BYTES),))
    elif choice < 10:  # delete a run
        del buffer[position : position + rng.randint(1, 8)]
    elif choice == 10:  # truncate
        del buffer[position:]
    elif choice == 11:  # splice in part of another payload
        other = rng.choice(corpus)
        start = rng.randrange(len(other))
        buffer[position:position] = other[start : start + rng.randint(1, 32)]
    elif choice == 12:  # a huge u32 count or length
        buffer[position:position] = bytes((rng.choice((0x0F, 0x15, 0x17)),)) + b"\xff" * 4
    elif choice == 13:
        _insert_deep_nesting(rng, buffer, position)
    else:  # duplicate a run
        buffer[position:position] = buffer[position : position + rng.randint(1, 16)]


def mutate(rng: random.Random, data: bytes, corpus: List[bytes]) -> bytes:
    """Apply one to four random mutations to ``data``."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        _apply_mutation(rng, buffer, corpus)
    return bytes(buffer)


def _brine_input(rng: random.Random, corpus: List[bytes]) -> bytes:
    if rng.random() < 0.3:
        size = rng.randint(0, 64)
        return bytes(
            rng.choice(TAG_BYTES) if rng.random() < 0.5 else rng.randrange(256)
            for _ in range(size)
        )
    return mutate(rng, rng.choice(corpus)[1:], corpus)


def check_brine(data: bytes, check_agreement: bool) -> None:
    try:
        value: object = brine.load(data)
    except BrineError:
        value = BrineError
    if not check_agreement:
        return
    try:
        reference, end = brine_strict.decode(data, 0, brine.DEFAULT_MAX_DEPTH)
        if end != len(data):
            reference = BrineError
    except BrineError:
        reference = BrineError
    if (value is BrineError) != (reference is BrineError):
        raise AssertionError("fast and reference brine decoders disagree on validity")
    if value is not BrineError and not same_value(value, reference):
        raise AssertionError("fast and reference brine decoders return different values")


def same_value(left: object, right: object) -> bool:
    """Compare decoded values exactly (types by identity, floats by bits), without recursion."""
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if type(a) is tuple:
            if len(a) != len(b):  # type: ignore[arg-type]
                return False
            pending.extend(zip(a, b))  # type: ignore[call-overload]
        elif type(a) is slice:
            pending.append(((a.start, a.stop, a.step), (b.start, b.stop, b.step)))  # type: ignore[attr-defined]
        elif type(a) in (float, complex):
            if struct.pack("!dd", complex(a).real, complex(a).imag) != struct.pack(  # type: ignore[arg-type]
                "!dd", complex(b).real, complex(b).imag  # type: ignore[arg-type]
            ):
                return False
        else:
            try:
                if a != b:
                    return False
            except RecursionError:  # a frozenset holding a very deep tuple; cannot tell
                pass
    return True


def _message_input(rng: random.Random, corpus: List[bytes]) -> bytes:
    if rng.random() < 0.2:
        return _random_bytes(rng, rng.randint(0, 48))
    return mutate(rng, rng.choice(corpus), corpus)


def check_message(data: bytes, check_agreement: bool) -> None:
    try:
        messages.decode_message(data)
    except ProtocolError:
        pass


def _zlib_bomb() -> bytes:
    body = zlib.compress(b"\x00" * (4 * FUZZ_MAX_FRAME_SIZE), 9)
    return len(body).to_bytes(4, "big") + b"\x01" + body + b"\n"


_BOMB = _zlib_bomb()


class FrameCase:
    """A frame stream, where to split it, and the payloads it must yield (None: unknown)."""

    def __init__(self, stream: bytes, cuts: List[int], payloads: Optional[List[bytes]]):
        self.stream = stream
        self.cuts = cuts
        self.payloads = payloads

    def hex(self) -> str:
        return "stream %s cuts %s" % (self.stream.hex(), self.cuts)


def _frame_input(rng: random.Random, corpus: List[bytes]) -> FrameCase:
    payloads: Optional[List[bytes]] = [rng.choice(corpus) for _ in range(rng.randint(1, 4))]
    thresholds = (wire.COMPRESSION_THRESHOLD, 0, None)
    stream = b"".join(encode_frame(p, rng.choice(thresholds)) for p in payloads or ())
    roll = rng.random()
    if roll >= 0.3:
        payloads = None
        if roll < 0.33:
            stream = stream + _BOMB
        elif roll < 0.45:
            stream = _random_bytes(rng, rng.randint(0, 64))
        else:
            stream = mutate(rng, stream, corpus)
    cuts = sorted(rng.randint(0, len(stream)) for _ in range(rng.randint(0, 6)))
    return FrameCase(stream, cuts, payloads)


def check_frames(case: FrameCase, check_agreement: bool) -> None:
    decoder = FrameDecoder(max_frame_size=FUZZ_MAX_FRAME_SIZE)
    received: List[bytes] = []
    start = 0
    try:
        for cut in case.cuts + [len(case.stream)]:
            received.extend(decoder.feed(case.stream[start:cut]))
            start = cut
    except FramingError:
        if case.payloads is not None:
            raise AssertionError("valid frame stream rejected") from None
    if case.payloads is not None and received != case.payloads:
        raise AssertionError("frame payloads changed in transit")
    for payload in received:
        check_message(payload, check_agreement)


CASE_KINDS: Dict[str, Tuple[Callable[[random.Random, List[bytes]], Any], Callable[[Any, bool], None]]] = {
    "brine.load": (_brine_input, check_brine),
    "decode_message": (_message_input, check_message),
    "FrameDecoder": (_frame_input, check_frames),
}


def run_worker(seed: int, cases: int) -> Dict[str, Any]:
    """Run ``cases`` cases with one seed; return counts, times, failures and peak RSS."""
    rng = random.Random(seed)
    corpus = build_corpus()
    kinds = list(CASE_KINDS.items())
    counts = {name: 0 for name, _ in kinds}
    seconds = {name: 0.0 for name, _ in kinds}
    failures: List[str] = []
    clock = time.perf_counter
    for index in range(cases):
        name, (generate, check) = kinds[index % len(kinds)]
        started = clock()
        data = generate(rng, corpus)
        try:
            check(data, index % 10 == 0)
        except Exception as exc:  # every undocumented exception is a finding
            failures.append(
                "seed %d case %d (%s): %s: %s\n  input: %s"
                % (seed, index, name, type(exc).__name__, exc, data.hex()[:400])
            )
            if len(failures) >= MAX_REPORTED_FAILURES:
                break
        seconds[name] += clock() - started
        counts[name] += 1
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"counts": counts, "seconds": seconds, "failures": failures, "peak_kib": peak_kib}


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="total number of inputs")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first worker")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parse_args(argv)
    workers = max(1, args.workers)
    shares = [args.cases // workers + (1 if i < args.cases % workers else 0) for i in range(workers)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run_worker, [args.seed + i for i in range(workers)], shares))
    elapsed = time.perf_counter() - started

    print("python %s, %d workers, seed %d" % (sys.version.split()[0], workers, args.seed))
    total = 0
    for name in CASE_KINDS:
        count = sum(r["counts"][name] for r in results)
        busy = sum(r["seconds"][name] for r in results)
        total += count
        rate = count / busy if busy else 0.0
        print("  %-15s %9d cases  %9.0f cases/s per worker" % (name, count, rate))
    print("  total           %9d cases in %.1f s wall, %.0f cases/s" % (total, elapsed, total / elapsed))
    peak = max(r["peak_kib"] for r in results)
    print("  peak RSS of a worker: %.1f MiB" % (peak / 1024))
    failures = [f for r in results for f in r["failures"]]
    for failure in failures:
        print("FAILURE " + failure)
    if failures:
        print("%d failures" % len(failures))
        return 1
    print("no undocumented exceptions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
