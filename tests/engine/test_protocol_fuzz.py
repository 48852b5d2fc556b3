"""Property tests for the wire codecs: round trips, and only ProtocolError on garbage.

The default run keeps each property at FUZZ_EXAMPLES (default 200) examples so the file runs
in a few seconds. For a longer search set, for example, FUZZ_EXAMPLES=5000 and pass
``--timeout 0``, because pytest-timeout stops each test after 120 s.
"""

from __future__ import annotations

import math
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpyc_engine.protocol import brine, brine_strict, messages, vinegar
from rpyc_engine.protocol.errors import BrineError, ProtocolError
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.just(Ellipsis),
    st.just(NotImplemented),
    st.integers(),
    st.integers(min_value=-(10**600), max_value=10**600),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=600),
)
hashable_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
slices = st.builds(slice, hashable_scalars, hashable_scalars, hashable_scalars)
values = st.recursive(
    st.one_of(scalars, slices),
    lambda children: st.one_of(
        st.lists(children, max_size=8).map(tuple),
        st.frozensets(hashable_scalars, max_size=8),
    ),
    max_leaves=40,
)
# Tuples of 256 and more items take the u32 count form; repeating one drawn value keeps the
# generation cheap.
long_tuples = st.builds(
    lambda item, start, size: (item,) + tuple(range(start, start + size)),
    values,
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(min_value=255, max_value=300),
)
names = st.one_of(st.just("builtins"), st.text(max_size=12))
exception_data = st.one_of(
    st.just(1),
    values,
    st.tuples(
        st.one_of(st.tuples(names, names), values),
        st.one_of(st.lists(values, max_size=3).map(tuple), values),
        st.one_of(st.lists(st.tuples(names, values), max_size=3).map(tuple), values),
        st.one_of(st.text(max_size=50), values),
    ),
)


def _same(left: object, right: object) -> bool:
    """Compare decoded values exactly: types by identity, floats by bit pattern."""
    if type(left) is not type(right):
        return False
    if type(left) is float:
        return struct.pack("!d", left) == struct.pack("!d", right)
    if type(left) is complex:
        return _same(left.real, right.real) and _same(left.imag, right.imag)
    if type(left) is tuple:
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    if type(left) is slice:
        return _same((left.start, left.stop, left.step), (right.start, right.stop, right.step))
    return left == right


@FUZZ
@given(st.one_of(values, long_tuples))
def test_brine_round_trip(value):
    assert brine.dumpable(value)
    decoded = brine.load(brine.dump(value))
    assert _same(decoded, value)


def test_same_detects_differences():
    assert not _same(0.0, -0.0)
    assert not _same(1, True)
    assert _same(math.nan, math.nan)


@FUZZ
@given(st.binary(max_size=200))
def test_brine_load_raises_only_protocol_errors(data):
    try:
        brine.load(data)
    except ProtocolError:
        pass


@FUZZ
@given(values, st.data())
def test_brine_load_of_mutated_valid_data(value, data):
    encoded = bytearray(brine.dump(value))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
        encoded[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    try:
        brine.load(bytes(encoded[:cut]))
    except ProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_decode_message_raises_only_protocol_errors(data):
    try:
        messages.decode_message(data)
    except ProtocolError:
        pass


@FUZZ
@given(exception_data)
def test_load_exception_raises_only_protocol_errors(value):
    try:
        exc = vinegar.load_exception(value)
    except ProtocolError:
        return
    assert isinstance(exc, BaseException)
    assert isinstance(str(exc), str)


@FUZZ
@given(st.lists(st.binary(max_size=5000), max_size=6), st.data())
def test_frame_decoder_random_splits(payloads, data):
    stream = b"".join(encode_frame(payload) for payload in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = FrameDecoder()
    received = []
    start = 0
    for cut in cuts + [len(stream)]:
        received.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert received == payloads
    assert decoder.buffered == 0


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_frame_decoder_garbage_raises_only_protocol_errors(stream, cuts):
    decoder = FrameDecoder(max_frame_size=1000)
    start = 0
    try:
        for cut in sorted(cuts) + [len(stream)]:
            decoder.feed(stream[start:cut])
            start = max(start, cut)
    except ProtocolError:
        pass


def _strict_load(data: bytes):
    value, end = brine_strict.decode(data, 0, brine.DEFAULT_MAX_DEPTH)
    if end != len(data):
        raise BrineError("trailing bytes")
    return value


@FUZZ
@given(st.one_of(st.binary(max_size=200), values.map(brine.dump)), st.data())
def test_fast_and_reference_decoders_agree(encoded, data):
    mutated = bytearray(encoded)
    if mutated and data.draw(st.booleans()):
        index = data.draw(st.integers(min_value=0, max_value=len(mutated) - 1))
        mutated[index] = data.draw(st.integers(min_value=0, max_value=255))
    mutated = bytes(mutated)
    try:
        expected = _strict_load(mutated)
    except BrineError:
        expected = BrineError
    try:
        actual = brine._fast_load(mutated)
    except Exception:
        actual = BrineError
    if expected is BrineError or actual is BrineError:
        assert actual is expected
    else:
        assert _same(actual, expected)
