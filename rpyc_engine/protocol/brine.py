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
the text after tag 16/17 must match ``-?[0-9]+`` (ASCII digits), a frozenset's member item must be a tuple,
and a slice's item must be a 3-tuple.

``load`` runs a fast recursive decoder first. When it fails for any reason, ``load`` decodes
again with the iterative reference decoder in ``brine_strict``, which has exact limits and
precise error messages, so a deeply nested input cannot cause a ``RecursionError``. ``dump``
and ``dumpable`` recurse, since they only see our own values.
"""

from __future__ import annotations

import struct
import sys
from io import BytesIO
from typing import Any, Callable, Dict, List

from . import brine_strict
from .errors import BrineError
from .wire import (
    IMM_MAX,
    IMM_MIN,
    IMM_OFFSET,
    TAG_BYTES_L1,
    TAG_BYTES_U8,
    TAG_BYTES_U32,
    TAG_COMPLEX,
    TAG_ELLIPSIS,
    TAG_EMPTY_BYTES,
    TAG_EMPTY_TUPLE,
    TAG_FALSE,
    TAG_FLOAT,
    TAG_FROZENSET,
    TAG_IMM_FIRST,
    TAG_INT_U8,
    TAG_INT_U32,
    TAG_NONE,
    TAG_NOT_IMPLEMENTED,
    TAG_SLICE,
    TAG_STR,
    TAG_TRUE,
    TAG_TUPLE_L1,
    TAG_TUPLE_U8,
    TAG_TUPLE_U32,
)

__all__ = ["DEFAULT_MAX_DEPTH", "Encoded", "dump", "dump_int", "dumpable", "load"]

# Maximum number of nested non-empty tuples, slices and frozensets that `load` accepts.
DEFAULT_MAX_DEPTH = 1000


_U32 = struct.Struct("!L")
_TAGGED_FLOAT = struct.Struct("!Bd")
_TAGGED_COMPLEX = struct.Struct("!Bdd")
_FLOAT = struct.Struct("!d")
_COMPLEX = struct.Struct("!dd")
_is_int_text = brine_strict.is_int_text

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


def dump_int(obj: int) -> bytes:
    """Return the brine encoding of one int (not a bool), as ``dump`` would write it."""
    if IMM_MIN <= obj <= IMM_MAX:
        return _IMM_BYTES[obj - IMM_MIN]
    parts: List[bytes] = []
    _dump_int(obj, parts.append)
    return b"".join(parts)


class Encoded:
    """Bytes that ``dump`` copies verbatim: one item already encoded with ``dump``.

    The connection keeps these for parts of messages that repeat (the boxed reference
    to a proxy it sends again and again), so they are not encoded on every request.
    ``dumpable`` is false for them: they only appear inside values built for ``dump``.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Encoded({self.data!r})"


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
    Encoded: lambda obj, append: append(obj.data),
}

_SIMPLE_TYPES = frozenset(
    {_NoneType, int, bool, float, bytes, str, complex, _NotImplementedType, _EllipsisType}
)


def dumpable(obj: object) -> bool:
    """Tell whether ``obj`` can travel by value, using rpyc's exact rules.

    Types are compared by identity, not ``isinstance``: a ``str`` subclass, an ``IntEnum`` or
    a namedtuple is not dumpable. Tuples and frozensets are dumpable when every member is,
    slices when start, stop and step are. A value nested too deeply for the interpreter's
    recursion limit is reported as not dumpable, so it travels by reference instead.
    """
    try:
        return _is_dumpable(obj)
    except RecursionError:
        return False


def _is_dumpable(obj: object) -> bool:
    kind = type(obj)
    if kind in _SIMPLE_TYPES:
        return True
    if kind is tuple or kind is frozenset:
        for item in obj:  # type: ignore[attr-defined]
            if not _is_dumpable(item):
                return False
        return True
    if kind is slice:
        return (
            _is_dumpable(obj.start)  # type: ignore[attr-defined]
            and _is_dumpable(obj.stop)  # type: ignore[attr-defined]
            and _is_dumpable(obj.step)  # type: ignore[attr-defined]
        )
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
            allows (CPython 3.11+ and security releases of older versions), or ``obj`` is
            nested too deeply for the interpreter's recursion limit.
    """
    parts: List[bytes] = []
    try:
        _DUMPERS[type(obj)](obj, parts.append)
    except KeyError as exc:
        raise TypeError(
            "brine cannot encode a value of type %r; only values for which dumpable() is "
            "true travel by value" % (exc.args[0],)
        ) from None
    except RecursionError:
        raise ValueError(
            "brine cannot encode a value nested deeper than the recursion limit (%d); send "
            "it by reference instead" % sys.getrecursionlimit()
        ) from None
    return b"".join(parts)


# ---------------------------------------------------------------------------------------
# Decoding
#
# The fast decoder reads from a BytesIO. Every loader takes the stream's read method and the
# remaining nesting budget. On bad input a loader raises whatever it meets: KeyError for an
# unknown tag, IndexError or struct.error for truncation, _Invalid for the rest. `load` then
# hands the input to the reference decoder, which raises the precise BrineError.


class _Invalid(Exception):
    """Raised inside the fast decoder for input that the reference decoder rejects."""


_Read = Callable[[int], bytes]
_Loader = Callable[[_Read, int], Any]
_LOADERS: Dict[bytes, _Loader] = {}
_BYTES_LOADERS: Dict[bytes, Callable[[_Read], bytes]] = {}


def _constant_loader(value: Any) -> _Loader:
    return lambda read, budget: value


def _fixed_bytes_loader(size: int) -> Callable[[_Read], bytes]:
    def load_fixed(read: _Read) -> bytes:
        raw = read(size)
        if len(raw) != size:
            raise _Invalid
        return raw

    return load_fixed


def _load_bytes_u8(read: _Read) -> bytes:
    size = read(1)[0]
    raw = read(size)
    if len(raw) != size:
        raise _Invalid
    return raw


def _load_bytes_u32(read: _Read) -> bytes:
    size = _U32.unpack(read(4))[0]
    raw = read(size)
    if len(raw) != size:
        raise _Invalid
    return raw


def _load_str(read: _Read, budget: int) -> str:
    return _BYTES_LOADERS[read(1)](read).decode("utf-8")


def _load_int_u8(read: _Read, budget: int) -> int:
    size = read(1)[0]
    text = read(size)
    if len(text) != size or not _is_int_text(text):
        raise _Invalid
    return int(text)


def _load_int_u32(read: _Read, budget: int) -> int:
    size = _U32.unpack(read(4))[0]
    text = read(size)
    if len(text) != size or not _is_int_text(text):
        raise _Invalid
    return int(text)


def _load_tuple_1(read: _Read, budget: int) -> tuple:
    if budget <= 0:
        raise _Invalid
    return (_LOADERS[read(1)](read, budget - 1),)


def _load_tuple_2(read: _Read, budget: int) -> tuple:
    if budget <= 0:
        raise _Invalid
    loaders = _LOADERS
    budget -= 1
    return (loaders[read(1)](read, budget), loaders[read(1)](read, budget))


def _load_tuple_3(read: _Read, budget: int) -> tuple:
    if budget <= 0:
        raise _Invalid
    loaders = _LOADERS
    budget -= 1
    return (
        loaders[read(1)](read, budget),
        loaders[read(1)](read, budget),
        loaders[read(1)](read, budget),
    )


def _load_items(read: _Read, budget: int, count: int) -> tuple:
    if budget <= 0:
        raise _Invalid
    loaders = _LOADERS
    budget -= 1
    # A count beyond the input makes read(1) return b"" and fail with KeyError, so the loop
    # ends after at most len(input) rounds and nothing is allocated for the count up front.
    return tuple([loaders[read(1)](read, budget) for _ in range(count)])


def _load_slice(read: _Read, budget: int) -> slice:
    if budget <= 0:
        raise _Invalid
    inner = _LOADERS[read(1)](read, budget - 1)
    if type(inner) is not tuple or len(inner) != 3:
        raise _Invalid
    return slice(*inner)


def _load_frozenset(read: _Read, budget: int) -> frozenset:
    if budget <= 0:
        raise _Invalid
    inner = _LOADERS[read(1)](read, budget - 1)
    if type(inner) is not tuple:
        raise _Invalid
    return frozenset(inner)


def _register_loaders() -> None:
    constants = {
        TAG_NONE: None,
        TAG_EMPTY_BYTES: b"",
        TAG_EMPTY_TUPLE: (),
        TAG_TRUE: True,
        TAG_FALSE: False,
        TAG_NOT_IMPLEMENTED: NotImplemented,
        TAG_ELLIPSIS: Ellipsis,
    }
    for value in range(IMM_MIN, IMM_MAX + 1):
        constants[value + IMM_OFFSET] = value
    for tag, value in constants.items():
        _LOADERS[bytes((tag,))] = _constant_loader(value)

    _BYTES_LOADERS[bytes((TAG_EMPTY_BYTES,))] = lambda read: b""
    for size in range(1, 5):
        _BYTES_LOADERS[bytes((TAG_BYTES_L1 - 1 + size,))] = _fixed_bytes_loader(size)
    _BYTES_LOADERS[bytes((TAG_BYTES_U8,))] = _load_bytes_u8
    _BYTES_LOADERS[bytes((TAG_BYTES_U32,))] = _load_bytes_u32
    for key, load_raw in _BYTES_LOADERS.items():
        if key[0] != TAG_EMPTY_BYTES:
            _LOADERS[key] = lambda read, budget, load_raw=load_raw: load_raw(read)

    fixed_tuples = [_load_tuple_1, _load_tuple_2, _load_tuple_3]
    for size, loader in enumerate(fixed_tuples, start=1):
        _LOADERS[bytes((TAG_TUPLE_L1 - 1 + size,))] = loader
    _LOADERS[bytes((TAG_TUPLE_L1 + 3,))] = lambda read, budget: _load_items(read, budget, 4)
    _LOADERS[bytes((TAG_TUPLE_U8,))] = lambda read, budget: _load_items(
        read, budget, read(1)[0]
    )
    _LOADERS[bytes((TAG_TUPLE_U32,))] = lambda read, budget: _load_items(
        read, budget, _U32.unpack(read(4))[0]
    )
    _LOADERS[bytes((TAG_STR,))] = _load_str
    _LOADERS[bytes((TAG_INT_U8,))] = _load_int_u8
    _LOADERS[bytes((TAG_INT_U32,))] = _load_int_u32
    _LOADERS[bytes((TAG_FLOAT,))] = lambda read, budget: _FLOAT.unpack(read(8))[0]
    _LOADERS[bytes((TAG_COMPLEX,))] = lambda read, budget: complex(*_COMPLEX.unpack(read(16)))
    _LOADERS[bytes((TAG_SLICE,))] = _load_slice
    _LOADERS[bytes((TAG_FROZENSET,))] = _load_frozenset


_register_loaders()


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
    try:
        return _fast_load(data, offset, max_depth)
    except Exception:  # noqa: BLE001 - the reference decoder below reports the cause
        pass
    # Slow path, also taken by a valid value nested too deep for the interpreter's
    # recursion limit: the reference decoder returns it or raises the precise BrineError.
    value, end = brine_strict.decode(data, offset, max_depth)
    if end != len(data):
        raise BrineError(
            "brine data has %d trailing bytes after the item ending at offset %d"
            % (len(data) - end, end)
        )
    return value


def _fast_load(data: bytes, offset: int = 0, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode with the fast decoder; raise any exception (or _Invalid) on bad input."""
    stream = BytesIO(data)
    if offset:
        stream.seek(offset)
    read = stream.read
    value = _LOADERS[read(1)](read, max_depth)
    if stream.tell() != len(data):
        raise _Invalid
    return value
