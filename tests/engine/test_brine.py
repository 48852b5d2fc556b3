"""brine: the byte vectors stock rpyc 6.0.2 produces, and rejection of malformed input."""

from __future__ import annotations

import math
import struct

import pytest

from rpyc_engine.protocol import brine
from rpyc_engine.protocol.errors import BrineError, ProtocolError

# (value, encoding) pairs produced by stock brine.dump (rpyc 6.0.2).
STOCK_VECTORS = [
    (None, "00"),
    (True, "03"),
    (False, "04"),
    (42, "7a"),
    (-1, "4f"),
    (1000, "16 04 31 30 30 30"),
    (2**70, "16 16" + " 31 31 38 30 35 39 31 36 32 30 37 31 37 34 31 31 33 30 33 34 32 34"),
    (1.5, "18 3f f8 00 00 00 00 00 00"),
    (1 + 2j, "1b 3f f0 00 00 00 00 00 00 40 00 00 00 00 00 00 00"),
    (b"hello", "0e 05 68 65 6c 6c 6f"),
    (b"", "01"),
    ("héllo", "08 0e 06 68 c3 a9 6c 6c 6f"),
    ("", "08 01"),
    ((1, "a", None), "12 51 08 0a 61 00"),
    ((1, 2, 3, 4, 5), "14 05 51 52 53 54 55"),
    ((), "02"),
    (frozenset({5}), "1a 10 55"),
    (slice(1, 10, None), "19 12 51 5a 00"),
    (Ellipsis, "06"),
    (NotImplemented, "05"),
    (-48, "20"),
    (159, "ef"),
    (160, "16 03 31 36 30"),
    (-49, "16 03 2d 34 39"),
    ((0, (3, (1, ()))), "11 50 11 53 11 51 02"),
    (b"x" * 300, "0f 00 00 01 2c" + " 78" * 300),
    (tuple(range(300)), None),  # checked separately below
]


@pytest.mark.parametrize("value,encoding", [v for v in STOCK_VECTORS if v[1] is not None])
def test_dump_matches_stock(value, encoding):
    assert brine.dump(value) == bytes.fromhex(encoding)


@pytest.mark.parametrize("value,encoding", [v for v in STOCK_VECTORS if v[1] is not None])
def test_load_matches_stock(value, encoding):
    decoded = brine.load(bytes.fromhex(encoding))
    assert decoded == value
    assert type(decoded) is type(value)


def test_long_tuple_uses_u32_count():
    value = tuple(range(300))
    encoded = brine.dump(value)
    assert encoded.startswith(bytes.fromhex("15 00 00 01 2c 50 51"))
    assert brine.load(encoded) == value


def test_float_bit_patterns_kept():
    for value, head in [(float("nan"), "7ff8"), (-0.0, "8000"), (float("inf"), "7ff0")]:
        encoded = brine.dump(value)
        assert encoded[:3] == bytes.fromhex("18" + head)
        decoded = brine.load(encoded)
        assert struct.pack("!d", decoded) == struct.pack("!d", value)
    assert math.isnan(brine.load(brine.dump(float("nan"))))


def test_decoder_accepts_non_minimal_classes():
    # Stock's decoder accepts any length class; the encoder never emits these.
    assert brine.load(bytes.fromhex("0e 01 61")) == b"a"
    assert brine.load(bytes.fromhex("0f 00 00 00 01 61")) == b"a"
    assert brine.load(bytes.fromhex("14 01 51")) == (1,)
    assert brine.load(bytes.fromhex("14 00")) == ()
    assert brine.load(bytes.fromhex("15 00 00 00 02 51 52")) == (1, 2)
    assert brine.load(bytes.fromhex("16 01 35")) == 5
    assert brine.load(bytes.fromhex("17 00 00 00 02 2d 35")) == -5
    assert brine.load(bytes.fromhex("08 0a 61")) == "a"
    assert brine.load(bytes.fromhex("08 0f 00 00 00 01 61")) == "a"


def test_long_int_text_uses_u32_length():
    value = 7 ** 400  # 339 decimal digits
    encoded = brine.dump(value)
    assert encoded[0] == 0x17
    assert int.from_bytes(encoded[1:5], "big") == len(str(value))
    assert brine.load(encoded) == value


def test_load_accepts_offset_and_buffers():
    assert brine.load(b"\x01\x7a", 1) == 42
    assert brine.load(bytearray(b"\x7a")) == 42
    assert brine.load(memoryview(b"\x11\x51\x52")) == (1, 2)


@pytest.mark.parametrize(
    "value,expected",
    [
        (1, True),
        (True, True),
        (None, True),
        ("s", True),
        (b"b", True),
        (1.0, True),
        (1j, True),
        (Ellipsis, True),
        (NotImplemented, True),
        ((1, (2, "x")), True),
        (frozenset({1, "a"}), True),
        (slice(1, None, 2), True),
        ([1], False),
        ({}, False),
        (bytearray(b"x"), False),
        ((1, [2]), False),
        (frozenset({(1, object())}), False),
        (slice(1, [2]), False),
        (object(), False),
    ],
)
def test_dumpable_rules(value, expected):
    assert brine.dumpable(value) is expected


def test_dumpable_uses_type_identity():
    import collections
    import enum

    class Color(enum.IntEnum):
        RED = 1

    class Text(str):
        pass

    Point = collections.namedtuple("Point", "x y")
    assert brine.dumpable(Color.RED) is False
    assert brine.dumpable(Text("a")) is False
    assert brine.dumpable(Point(1, 2)) is False


def test_dump_rejects_undumpable_with_type_error():
    with pytest.raises(TypeError, match="list"):
        brine.dump((1, [2]))


MALFORMED = [
    ("unknown tag 07", "07"),
    ("reserved tag 09", "09"),
    ("unknown tag 1c", "1c"),
    ("unknown tag 1f", "1f"),
    ("unknown tag f0", "f0"),
    ("unknown tag ff", "ff"),
    ("empty input", ""),
    ("truncated bytes l4", "0d 61 62"),
    ("truncated bytes u8 length", "0e"),
    ("truncated bytes u8 body", "0e 05 61"),
    ("truncated bytes u32 length", "0f 00 00"),
    ("truncated bytes u32 body", "0f 00 00 01 00 61"),
    ("truncated str tag", "08"),
    ("truncated str body", "08 0c 61"),
    ("str holding non-bytes", "08 51"),
    ("truncated tuple items", "12 51 52"),
    ("truncated tuple u8 count", "14"),
    ("truncated tuple u32 count", "15 00 00"),
    ("truncated nested tuple", "11 51 11 52"),
    ("truncated int length", "16"),
    ("truncated int text", "16 05 31 32"),
    ("truncated int u32 length", "17 00"),
    ("truncated float", "18 3f f8 00"),
    ("truncated complex", "1b 3f f0 00 00 00 00 00 00 40"),
    ("truncated slice", "19"),
    ("truncated frozenset", "1a 11 51"),
    ("trailing bytes", "51 52"),
    ("trailing after tuple", "11 51 52 00"),
    ("invalid utf-8", "08 0a ff"),
    ("surrogate utf-8", "08 0c ed a0 80"),
    ("int text with plus", "16 02 2b 31"),
    ("int text with space", "16 02 20 31"),
    ("int text with underscore", "16 03 31 5f 31"),
    ("int text empty", "16 00"),
    ("int text only minus", "16 01 2d"),
    ("int text unicode digit", "16 03 d9 a3 31"),
    ("huge tuple count u32", "15 ff ff ff ff 00"),
    ("huge tuple count u8", "14 ff 00 00"),
    ("huge bytes length u32", "0f ff ff ff ff 61"),
    ("huge int text length", "17 ff ff ff ff 31"),
    ("slice holding 2-tuple", "19 11 51 52"),
    ("slice holding int", "19 51"),
    ("frozenset holding str", "1a 08 0a 61"),
]


@pytest.mark.parametrize("case,encoding", MALFORMED, ids=[c for c, _ in MALFORMED])
def test_malformed_raises_brine_error(case, encoding):
    with pytest.raises(BrineError):
        brine.load(bytes.fromhex(encoding))


def test_brine_error_is_protocol_error():
    assert issubclass(BrineError, ProtocolError)


def test_deep_nesting_rejected_without_recursion_error():
    depth = 100_000
    data = b"\x10" * depth + b"\x00"
    with pytest.raises(BrineError, match="deeper than 1000"):
        brine.load(data)


def test_nesting_limit_is_exact():
    at_limit = b"\x10" * 999 + b"\x11\x00\x00"  # 1000 nested tuples
    assert brine.load(at_limit) is not None
    with pytest.raises(BrineError):
        brine.load(b"\x10" + at_limit)
    assert brine.load(b"\x10\x10\x10\x11\x00\x00", max_depth=4) is not None
    with pytest.raises(BrineError):
        brine.load(b"\x10\x10\x10\x11\x00\x00", max_depth=3)


def test_deep_slices_and_frozensets_count_as_nesting():
    data = b"\x1a\x10" * 600 + b"\x00"
    with pytest.raises(BrineError, match="deeper"):
        brine.load(data)


def test_int_above_digit_limit_rejected():
    get_limit = getattr(__import__("sys"), "get_int_max_str_digits", None)
    if get_limit is None or get_limit() == 0:
        pytest.skip("this interpreter has no int digit limit")
    digits = get_limit() + 1
    data = b"\x17" + digits.to_bytes(4, "big") + b"1" * digits
    with pytest.raises(BrineError):
        brine.load(data)


def test_frozenset_with_unhashable_member():
    import sys

    data = brine.dump((slice(1, 2, 3),))
    data = b"\x1a" + data
    if sys.version_info >= (3, 12):
        assert brine.load(data) == frozenset({slice(1, 2, 3)})
    else:
        with pytest.raises(BrineError, match="unhashable"):
            brine.load(data)


def _nested(depth: int) -> tuple:
    value: tuple = ()
    for _ in range(depth):
        value = (value,)
    return value


def test_too_deep_value_not_dumpable():
    deep = _nested(100_000)
    assert brine.dumpable(deep) is False
    with pytest.raises(ValueError, match="recursion limit"):
        brine.dump(deep)


def test_value_at_depth_limit_loads():
    # The recursive fast decoder may run out of interpreter stack first; load falls back to
    # the iterative reference decoder.
    data = b"\x10" * 999 + b"\x11\x00\x00"
    value = brine.load(data)
    depth = 0
    while type(value) is tuple and len(value) == 1:
        value = value[0]
        depth += 1
    assert depth == 999
    assert value == (None, None)
