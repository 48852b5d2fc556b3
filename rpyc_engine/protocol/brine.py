"""brine, the tag-based codec for the immutable values RPyC sends by value.

Wire format (rpyc 6.0.x): the first byte of every item is a tag; containers are a header with
the element count followed by their items, pre-order. The tag table:

===========  =========================================================================
tag          meaning
===========  =========================================================================
00 .. 06     None, b"", (), True, False, NotImplemented, Ellipsis
08           str: one bytes item follows, holding strict UTF-8
0A .. 0D     bytes of length 1 .. 4, raw bytes follow
0E / 0F      bytes, u8 / u32be length then raw bytes
10 .. 13     tuple of 1 .. 4 items
14 / 15      tuple, u8 / u32be count then the items
16 / 17      int as ASCII decimal text, u8 / u32be text length then the text
18           float, 8 bytes IEEE-754 binary64 big-endian
19           slice: one 3-tuple item (start, stop, step)
1A           frozenset: one tuple item holding the members
1B           complex: real then imaginary, each binary64 big-endian
20 .. EF     immediate int, value = tag - 0x50 (-48 .. 159)
07, 09, 1C .. 1F, F0 .. FF   unused: decoding fails
===========  =========================================================================

The encoder always picks the smallest length class; the decoder accepts any class, as stock
rpyc does. The decoder is stricter than stock in three places, all outside what stock emits:
the text after tag 16/17 must match ``-?[0-9]+``, a frozenset's member item must be a tuple,
and a slice's item must be a 3-tuple.

``load`` is iterative (an explicit stack, no recursion), so a deeply nested input cannot cause
a ``RecursionError``; ``dump`` and ``dumpable`` recurse, since they only see our own values.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Callable, Dict, List, Tuple

from .errors import BrineError

__all__ = ["DEFAULT_MAX_DEPTH", "dump", "dumpable", "load"]

# Maximum number of nested containers (tuples, slices, frozensets) that `load` accepts.
DEFAULT_MAX_DEPTH = 1000

TAG_NONE = 0x00
TAG_EMPTY_BYTES = 0x01
TAG_EMPTY_TUPLE = 0x02
TAG_TRUE = 0x03
TAG_FALSE = 0x04
TAG_NOT_IMPLEMENTED = 0x05
TAG_ELLIPSIS = 0x06
TAG_STR = 0x08
TAG_BYTES_L1 = 0x0A
TAG_BYTES_L4 = 0x0D
TAG_BYTES_U8 = 0x0E
TAG_BYTES_U32 = 0x0F
TAG_TUPLE_L1 = 0x10
TAG_TUPLE_L4 = 0x13
TAG_TUPLE_U8 = 0x14
TAG_TUPLE_U32 = 0x15
TAG_INT_U8 = 0x16
TAG_INT_U32 = 0x17
TAG_FLOAT = 0x18
TAG_SLICE = 0x19
TAG_FROZENSET = 0x1A
TAG_COMPLEX = 0x1B
TAG_IMM_FIRST = 0x20
TAG_IMM_LAST = 0xEF
IMM_OFFSET = 0x50
IMM_MIN = TAG_IMM_FIRST - IMM_OFFSET  # -48
IMM_MAX = TAG_IMM_LAST - IMM_OFFSET  # 159

_U32 = struct.Struct("!L")
_TAGGED_FLOAT = struct.Struct("!Bd")
_TAGGED_COMPLEX = struct.Struct("!Bdd")
_FLOAT = struct.Struct("!d")
_COMPLEX = struct.Struct("!dd")
_INT_TEXT = re.compile(rb"-?[0-9]+")

_NoneType = type(None)
_NotImplementedType = type(NotImplemented)
_EllipsisType = type(Ellipsis)

# ---------------------------------------------------------------------------------------
# Encoding

_IMM_BYTES = [bytes((value + IMM_OFFSET,)) for value in range(IMM_MIN, IMM_MAX + 1)]
_BYTES_HEADERS = [b""] + [
    bytes((TAG_BYTES_L1 - 1 + n,)) if n <= 4 else bytes((TAG_BYTES_U8, n)) for n in range(1, 256)
]
_TUPLE_HEADERS = [bytes((TAG_EMPTY_TUPLE,))] + [
    bytes((TAG_TUPLE_L1 - 1 + n,)) if n <= 4 else bytes((TAG_TUPLE_U8, n)) for n in range(1, 256)
]
_INT_HEADERS = [bytes((TAG_INT_U8, n)) for n in range(256)]

_Append = Callable[[bytes], Any]


def _dump_int(obj: int, append: _Append) -> None:
    if IMM_MIN <= obj <= IMM_MAX:
        append(_IMM_BYTES[obj - IMM_MIN])
        return
    text = b"%d" % obj
    size = len(text)
    if size < 256:
        append(_INT_HEADERS[size] + text)
    else:
        append(bytes((TAG_INT_U32,)) + _U32.pack(size))
        append(text)


def _dump_bytes(obj: bytes, append: _Append) -> None:
    size = len(obj)
    if size == 0:
        append(b"\x01")
    elif size < 256:
        append(_BYTES_HEADERS[size] + obj)
    else:
        append(bytes((TAG_BYTES_U32,)) + _U32.pack(size))
        append(obj)


def _dump_str(obj: str, append: _Append) -> None:
    append(b"\x08")
    _dump_bytes(obj.encode("utf-8"), append)


def _dump_tuple(obj: tuple, append: _Append) -> None:
    size = len(obj)
    if size < 256:
        append(_TUPLE_HEADERS[size])
    else:
        append(bytes((TAG_TUPLE_U32,)) + _U32.pack(size))
    dumpers = _DUMPERS
    for item in obj:
        dumpers[type(item)](item, append)


def _dump_slice(obj: slice, append: _Append) -> None:
    append(b"\x19")
    _dump_tuple((obj.start, obj.stop, obj.step), append)


def _dump_frozenset(obj: frozenset, append: _Append) -> None:
    append(b"\x1a")
    _dump_tuple(tuple(obj), append)


_DUMPERS: Dict[type, Callable[[Any, _Append], None]] = {
    _NoneType: lambda obj, append: append(b"\x00"),
    bool: lambda obj, append: append(b"\x03" if obj else b"\x04"),
    _NotImplementedType: lambda obj, append: append(b"\x05"),
    _EllipsisType: lambda obj, append: append(b"\x06"),
    int: _dump_int,
    float: lambda obj, append: append(_TAGGED_FLOAT.pack(TAG_FLOAT, obj)),
    complex: lambda obj, append: append(_TAGGED_COMPLEX.pack(TAG_COMPLEX, obj.real, obj.imag)),
    bytes: _dump_bytes,
    str: _dump_str,
    tuple: _dump_tuple,
    slice: _dump_slice,
    frozenset: _dump_frozenset,
}

_SIMPLE_TYPES = frozenset(
    {_NoneType, int, bool, float, bytes, str, complex, _NotImplementedType, _EllipsisType}
)


def dumpable(obj: object) -> bool:
    """Tell whether ``obj`` can travel by value, using rpyc's exact rules.

    Types are compared by identity, not ``isinstance``: a ``str`` subclass, an ``IntEnum`` or
    a namedtuple is not dumpable. Tuples and frozensets are dumpable when every member is,
    slices when start, stop and step are.
    """
    kind = type(obj)
    if kind in _SIMPLE_TYPES:
        return True
    if kind is tuple or kind is frozenset:
        for item in obj:  # type: ignore[attr-defined]
            if not dumpable(item):
                return False
        return True
    if kind is slice:
        return dumpable(obj.start) and dumpable(obj.stop) and dumpable(obj.step)  # type: ignore[attr-defined]
    return False


def dump(obj: object) -> bytes:
    """Encode one value as brine.

    Args:
        obj: a value for which ``dumpable(obj)`` is true.

    Returns:
        The encoding, as one bytes object.

    Raises:
        TypeError: ``obj`` or a member of it is not dumpable; check with ``dumpable`` first.
        UnicodeEncodeError: a str contains lone surrogates, which UTF-8 cannot encode.
        ValueError: an int has more decimal digits than ``sys.get_int_max_str_digits()``
            allows (CPython 3.11+ and security releases of older versions).
    """
    parts: List[bytes] = []
    try:
        _DUMPERS[type(obj)](obj, parts.append)
    except KeyError as exc:
        raise TypeError(
            "brine cannot encode a value of type %r; only values for which dumpable() is "
            "true travel by value" % (exc.args[0],)
        ) from None
    return b"".join(parts)


# ---------------------------------------------------------------------------------------
# Decoding

_NOT_LEAF = object()
# Value of every tag that needs no further bytes, indexed by tag; _NOT_LEAF for the others.
_LEAVES: List[Any] = [_NOT_LEAF] * 256
_LEAVES[TAG_NONE] = None
_LEAVES[TAG_EMPTY_BYTES] = b""
_LEAVES[TAG_EMPTY_TUPLE] = ()
_LEAVES[TAG_TRUE] = True
_LEAVES[TAG_FALSE] = False
_LEAVES[TAG_NOT_IMPLEMENTED] = NotImplemented
_LEAVES[TAG_ELLIPSIS] = Ellipsis
for _tag in range(TAG_IMM_FIRST, TAG_IMM_LAST + 1):
    _LEAVES[_tag] = _tag - IMM_OFFSET
del _tag
# All leaf tags, for bytes.translate: deleting them from a run of tags leaves b"" exactly when
# the whole run consists of leaves.
_LEAF_TAGS = bytes(tag for tag in range(256) if _LEAVES[tag] is not _NOT_LEAF)

_KIND_TUPLE = 0
_KIND_SLICE = 1
_KIND_FROZENSET = 2


def load(data: bytes, offset: int = 0, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode the single brine item that spans ``data[offset:]``.

    Args:
        data: the encoded bytes (a bytearray or memoryview is copied to bytes first).
        offset: where the item starts; the message layer uses 1 to skip the msg_type byte.
        max_depth: the maximum number of nested non-empty tuples, slices and frozensets.

    Returns:
        The decoded value.

    Raises:
        BrineError: for every malformed input (unknown tag, truncation, bytes after the item,
            invalid UTF-8, invalid int text, nesting deeper than ``max_depth``, a count larger
            than the remaining input can hold). No other exception escapes.
    """
    if type(data) is not bytes:
        data = bytes(data)
    value, end = _decode(data, offset, max_depth)
    if end != len(data):
        raise BrineError(
            "brine data has %d trailing bytes after the item ending at offset %d"
            % (len(data) - end, end)
        )
    return value


def _truncated(pos: int, what: str) -> BrineError:
    return BrineError("brine data truncated at offset %d: expected %s" % (pos, what))


def _decode(data: bytes, pos: int, max_depth: int) -> Tuple[Any, int]:
    """Decode one item starting at ``pos``; return it and the offset just after it."""
    size = len(data)
    leaves = _LEAVES
    stack: List[Tuple[Any, int, int]] = []  # the enclosing containers' (items, count, kind)
    items: Any = None  # the innermost open container's decoded items, None at top level
    count = 0
    kind = _KIND_TUPLE
    while True:
        if pos >= size:
            raise _truncated(pos, "an item tag")
        tag = data[pos]
        pos += 1
        value = leaves[tag]
        if value is _NOT_LEAF:
            if TAG_TUPLE_L1 <= tag <= TAG_TUPLE_U32:
                pos, length = _read_count(data, pos, tag - TAG_TUPLE_L1 + 1, "tuple")
                if length and len(stack) >= max_depth:
                    raise _too_deep(pos, max_depth)
                end = pos + length
                run = data[pos:end]
                if not run.translate(None, _LEAF_TAGS):
                    # Fast path: every item is a one-byte leaf (small ints, None, bools...).
                    value = tuple(map(leaves.__getitem__, run))
                    pos = end
                else:
                    stack.append((items, count, kind))
                    items, count, kind = [], length, _KIND_TUPLE
                    continue
            elif tag == TAG_SLICE or tag == TAG_FROZENSET:
                if len(stack) >= max_depth:
                    raise _too_deep(pos, max_depth)
                stack.append((items, count, kind))
                items, count = [], 1
                kind = _KIND_SLICE if tag == TAG_SLICE else _KIND_FROZENSET
                continue
            else:
                value, pos = _decode_scalar(tag, data, pos)

        # Hand the value to the enclosing containers, closing each one that is now complete.
        while items is not None:
            items.append(value)
            if len(items) < count:
                break
            value = _close_container(items, kind, pos)
            items, count, kind = stack.pop()
        else:
            return value, pos


def _read_count(data: bytes, pos: int, small: int, what: str) -> Tuple[int, int]:
    """Read a tuple's element count; ``small`` is 1..4 for the count-in-tag forms."""
    if small <= 4:
        length = small
    elif small == 5:
        if pos >= len(data):
            raise _truncated(pos, "a u8 %s count" % what)
        length = data[pos]
        pos += 1
    else:
        if pos + 4 > len(data):
            raise _truncated(pos, "a u32 %s count" % what)
        length = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
    # Every item takes at least one byte, so a larger count cannot be valid.
    if length > len(data) - pos:
        raise BrineError(
            "brine %s at offset %d declares %d items but only %d bytes remain"
            % (what, pos, length, len(data) - pos)
        )
    return pos, length


def _too_deep(pos: int, max_depth: int) -> BrineError:
    return BrineError(
        "brine data nests containers deeper than %d levels at offset %d" % (max_depth, pos)
    )


def _close_container(items: List[Any], kind: int, pos: int) -> Any:
    if kind == _KIND_TUPLE:
        return tuple(items)
    inner = items[0]
    if kind == _KIND_SLICE:
        if type(inner) is not tuple or len(inner) != 3:
            raise BrineError(
                "brine slice ending at offset %d must hold a 3-tuple, not %s"
                % (pos, type(inner).__name__)
            )
        return slice(*inner)
    if type(inner) is not tuple:
        raise BrineError(
            "brine frozenset ending at offset %d must hold a tuple, not %s"
            % (pos, type(inner).__name__)
        )
    try:
        return frozenset(inner)
    except TypeError as exc:  # an unhashable member, e.g. a slice before Python 3.12
        raise BrineError(
            "brine frozenset ending at offset %d has an unhashable member: %s" % (pos, exc)
        ) from None


def _read_raw(data: bytes, pos: int, tag: int) -> Tuple[bytes, int]:
    """Read the body of a non-empty bytes item (tags 0A..0F)."""
    if tag <= TAG_BYTES_L4:
        length = tag - TAG_BYTES_L1 + 1
    elif tag == TAG_BYTES_U8:
        if pos >= len(data):
            raise _truncated(pos, "a u8 bytes length")
        length = data[pos]
        pos += 1
    else:
        if pos + 4 > len(data):
            raise _truncated(pos, "a u32 bytes length")
        length = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
    end = pos + length
    if end > len(data):
        raise _truncated(pos, "%d bytes of data, found %d" % (length, len(data) - pos))
    return data[pos:end], end


def _decode_str(data: bytes, pos: int) -> Tuple[str, int]:
    if pos >= len(data):
        raise _truncated(pos, "the bytes item of a str")
    tag = data[pos]
    if tag == TAG_EMPTY_BYTES:
        return "", pos + 1
    if not TAG_BYTES_L1 <= tag <= TAG_BYTES_U32:
        raise BrineError(
            "brine str at offset %d must hold a bytes item, found tag 0x%02x" % (pos, tag)
        )
    raw, end = _read_raw(data, pos + 1, tag)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise BrineError("brine str at offset %d is not valid UTF-8: %s" % (pos, exc)) from None


def _decode_int_text(data: bytes, pos: int, tag: int) -> Tuple[int, int]:
    if tag == TAG_INT_U8:
        if pos >= len(data):
            raise _truncated(pos, "a u8 int text length")
        length = data[pos]
        pos += 1
    else:
        if pos + 4 > len(data):
            raise _truncated(pos, "a u32 int text length")
        length = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
    end = pos + length
    if end > len(data):
        raise _truncated(pos, "%d bytes of int text, found %d" % (length, len(data) - pos))
    text = data[pos:end]
    if _INT_TEXT.fullmatch(text) is None:
        raise BrineError("brine int at offset %d is not decimal text: %r" % (pos, text[:40]))
    try:
        return int(text), end
    except ValueError as exc:  # more digits than sys.get_int_max_str_digits() allows
        raise BrineError("brine int at offset %d rejected: %s" % (pos, exc)) from None


def _decode_scalar(tag: int, data: bytes, pos: int) -> Tuple[Any, int]:
    """Decode an item that is neither a one-byte leaf nor a container."""
    if tag == TAG_STR:
        return _decode_str(data, pos)
    if TAG_BYTES_L1 <= tag <= TAG_BYTES_U32:
        return _read_raw(data, pos, tag)
    if tag == TAG_INT_U8 or tag == TAG_INT_U32:
        return _decode_int_text(data, pos, tag)
    if tag == TAG_FLOAT:
        if pos + 8 > len(data):
            raise _truncated(pos, "8 bytes of float")
        return _FLOAT.unpack_from(data, pos)[0], pos + 8
    if tag == TAG_COMPLEX:
        if pos + 16 > len(data):
            raise _truncated(pos, "16 bytes of complex")
        real, imag = _COMPLEX.unpack_from(data, pos)
        return complex(real, imag), pos + 16
    raise BrineError(
        "brine data has unknown tag 0x%02x at offset %d; the peer does not speak RPyC 6 "
        "brine" % (tag, pos - 1)
    )
