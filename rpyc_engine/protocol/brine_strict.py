"""The reference brine decoder: iterative, exact limits, precise error messages.

``brine.load`` first tries a faster recursive decoder; when that one fails for any reason
(malformed input, or a ``RecursionError`` on a deep but valid value) ``load`` runs this
decoder, which either returns the value or raises a ``BrineError`` naming the cause and the
offset. This decoder uses an explicit stack, so nesting depth is bounded only by
``max_depth``, never by the interpreter's recursion limit.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, List, Optional, Tuple

from .errors import BrineError
from .wire import (
    IMM_OFFSET,
    TAG_BYTES_L1,
    TAG_BYTES_L4,
    TAG_BYTES_U32,
    TAG_COMPLEX,
    TAG_ELLIPSIS,
    TAG_EMPTY_BYTES,
    TAG_EMPTY_TUPLE,
    TAG_FALSE,
    TAG_FLOAT,
    TAG_FROZENSET,
    TAG_IMM_FIRST,
    TAG_IMM_LAST,
    TAG_INT_U8,
    TAG_INT_U32,
    TAG_NONE,
    TAG_NOT_IMPLEMENTED,
    TAG_SLICE,
    TAG_STR,
    TAG_TRUE,
    TAG_TUPLE_L1,
    TAG_TUPLE_L4,
    TAG_TUPLE_U32,
)

__all__ = ["decode", "is_int_text"]

_FLOAT = struct.Struct("!d")
_COMPLEX = struct.Struct("!dd")


def is_int_text(text: bytes) -> bool:
    """Tell whether ``text`` matches ``-?[0-9]+`` with ASCII digits only.

    ``int()`` alone would also accept "+", "_", surrounding spaces and non-ASCII digits,
    which stock never sends; ``bytes.isdigit()`` accepts ASCII digits only.
    """
    return text.isdigit() or (text[:1] == b"-" and text[1:].isdigit())


_Decoder = Callable[[bytes, int], Tuple[Any, int]]
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


def decode(data: bytes, pos: int, max_depth: int) -> Tuple[Any, int]:
    """Decode one item starting at ``pos``; return it and the offset just after it.

    Raises:
        BrineError: the input at ``pos`` is not one valid item, or nests more than
            ``max_depth`` non-empty tuples, slices and frozensets.
    """
    size = len(data)
    leaves = _LEAVES
    scalar_decoders = _SCALAR_DECODERS
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
            decoder = scalar_decoders[tag]
            if decoder is not None:
                value, pos = decoder(data, pos)
            elif TAG_TUPLE_L1 <= tag <= TAG_TUPLE_U32:
                pos, length = _read_tuple_count(data, pos, tag)
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
                raise BrineError(
                    "brine data has unknown tag 0x%02x at offset %d; the peer does not speak "
                    "RPyC 6 brine" % (tag, pos - 1)
                )

        # Hand the value to the enclosing containers, closing each one that is now complete.
        while items is not None:
            items.append(value)
            if len(items) < count:
                break
            value = _close_container(items, kind, pos)
            items, count, kind = stack.pop()
        else:
            return value, pos


def _truncated(pos: int, what: str) -> BrineError:
    return BrineError("brine data truncated at offset %d: expected %s" % (pos, what))


def _too_deep(pos: int, max_depth: int) -> BrineError:
    return BrineError(
        "brine data nests containers deeper than %d levels at offset %d" % (max_depth, pos)
    )


def _read_size(data: bytes, pos: int, wide: bool, what: str) -> Tuple[int, int]:
    """Read a u8 (or, when ``wide``, u32be) length or count; return it and the next offset."""
    if wide:
        end = pos + 4
        if end > len(data):
            raise _truncated(pos, "a u32 %s" % what)
        return int.from_bytes(data[pos:end], "big"), end
    if pos >= len(data):
        raise _truncated(pos, "a u8 %s" % what)
    return data[pos], pos + 1


def _read_tuple_count(data: bytes, pos: int, tag: int) -> Tuple[int, int]:
    if tag <= TAG_TUPLE_L4:
        length = tag - TAG_TUPLE_L1 + 1
    else:
        length, pos = _read_size(data, pos, tag == TAG_TUPLE_U32, "tuple count")
    # Every item takes at least one byte, so a larger count cannot be valid.
    if length > len(data) - pos:
        raise BrineError(
            "brine tuple at offset %d declares %d items but only %d bytes remain"
            % (pos, length, len(data) - pos)
        )
    return pos, length


def _close_container(items: List[Any], kind: int, pos: int) -> Any:
    if kind == _KIND_TUPLE:
        return tuple(items)
    inner = items[0]
    if kind == _KIND_SLICE:
        if type(inner) is not tuple or len(inner) != 3:
            raise BrineError(
                "brine slice ending at offset %d must contain a 3-tuple, not %s"
                % (pos, type(inner).__name__)
            )
        return slice(*inner)
    if type(inner) is not tuple:
        raise BrineError(
            "brine frozenset ending at offset %d must contain a tuple, not %s"
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
    else:
        length, pos = _read_size(data, pos, tag == TAG_BYTES_U32, "bytes length")
    end = pos + length
    if end > len(data):
        raise _truncated(pos, "%d bytes of data, found %d" % (length, len(data) - pos))
    return data[pos:end], end


def _decode_bytes(data: bytes, pos: int) -> Tuple[bytes, int]:
    return _read_raw(data, pos, data[pos - 1])


def _decode_str(data: bytes, pos: int) -> Tuple[str, int]:
    if pos >= len(data):
        raise _truncated(pos, "the bytes item of a str")
    tag = data[pos]
    if tag == TAG_EMPTY_BYTES:
        return "", pos + 1
    if not TAG_BYTES_L1 <= tag <= TAG_BYTES_U32:
        raise BrineError(
            "brine str at offset %d must contain a bytes item, found tag 0x%02x" % (pos, tag)
        )
    raw, end = _read_raw(data, pos + 1, tag)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise BrineError("brine str at offset %d is not valid UTF-8: %s" % (pos, exc)) from None


def _decode_int_text(data: bytes, pos: int) -> Tuple[int, int]:
    length, pos = _read_size(data, pos, data[pos - 1] == TAG_INT_U32, "int text length")
    end = pos + length
    if end > len(data):
        raise _truncated(pos, "%d bytes of int text, found %d" % (length, len(data) - pos))
    text = data[pos:end]
    if not is_int_text(text):
        raise BrineError("brine int at offset %d is not decimal text: %r" % (pos, text[:40]))
    try:
        return int(text), end
    except ValueError as exc:  # more digits than sys.get_int_max_str_digits() allows
        raise BrineError("brine int at offset %d rejected: %s" % (pos, exc)) from None


def _decode_float(data: bytes, pos: int) -> Tuple[float, int]:
    if pos + 8 > len(data):
        raise _truncated(pos, "8 bytes of float")
    return _FLOAT.unpack_from(data, pos)[0], pos + 8


def _decode_complex(data: bytes, pos: int) -> Tuple[complex, int]:
    if pos + 16 > len(data):
        raise _truncated(pos, "16 bytes of complex")
    real, imag = _COMPLEX.unpack_from(data, pos)
    return complex(real, imag), pos + 16


# Decoder of every tag that is neither a one-byte leaf nor a container, indexed by tag.
_SCALAR_DECODERS: List[Optional[_Decoder]] = [None] * 256
_SCALAR_DECODERS[TAG_STR] = _decode_str
for _tag in range(TAG_BYTES_L1, TAG_BYTES_U32 + 1):
    _SCALAR_DECODERS[_tag] = _decode_bytes
del _tag
_SCALAR_DECODERS[TAG_INT_U8] = _decode_int_text
_SCALAR_DECODERS[TAG_INT_U32] = _decode_int_text
_SCALAR_DECODERS[TAG_FLOAT] = _decode_float
_SCALAR_DECODERS[TAG_COMPLEX] = _decode_complex
