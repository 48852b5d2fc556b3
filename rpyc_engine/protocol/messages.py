"""The RPyC 6 message layer: one frame payload is one message.

Payload layout (rpyc 6.0.0 and later)::

    u8 msg_type | brine((seq, body))

=========  ==========  ====================================================
msg_type   name        body
=========  ==========  ====================================================
1          REQUEST     ``(handler_code, boxed_args)``
2          REPLY       the boxed return value
3          EXCEPTION   the vinegar form of the exception (not boxed)
=========  ==========  ====================================================

NOTE: thread binding (stock's ``bind_threads``, a 16-byte prefix before msg_type) is not
supported; a bound peer's frames fail to decode with ``ProtocolError``.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from . import brine, brine_strict
from .errors import BrineError, ProtocolError
from .wire import (
    IMM_OFFSET,
    MSG_EXCEPTION,
    MSG_REPLY,
    MSG_REQUEST,
    TAG_IMM_FIRST,
    TAG_IMM_LAST,
    TAG_INT_U8,
    TAG_TUPLE_L1,
)

__all__ = ["decode_message", "encode_exception", "encode_reply", "encode_request"]

# msg_type followed by the brine header of the 2-tuple (seq, body).
_PAIR = bytes((TAG_TUPLE_L1 + 1,))
_REQUEST_HEAD = bytes((MSG_REQUEST,)) + _PAIR
_REPLY_HEAD = bytes((MSG_REPLY,)) + _PAIR
_EXCEPTION_HEAD = bytes((MSG_EXCEPTION,)) + _PAIR
_dump = brine.dump
_dump_int = brine.dump_int
_load = brine.load
_is_int_text = brine_strict.is_int_text

# Decoded bodies of recent messages, per msg_type, keyed by their encoded bytes. A
# program that repeats a call sends and receives the same bodies with only seq changing,
# and brine values are immutable, so a body decoded and checked once is handed out again.
_BODY_CACHES: Dict[int, Dict[bytes, Any]] = {
    MSG_REQUEST: {},
    MSG_REPLY: {},
    MSG_EXCEPTION: {},
}
_CACHED_BODY_MAX_BYTES = 1024
_CACHED_BODIES_MAX = 256
_MISSING = object()
_PAIR_TAG = TAG_TUPLE_L1 + 1
_IMM_FIRST = TAG_IMM_FIRST
_IMM_LAST = TAG_IMM_LAST


def encode_request(seq: int, handler: int, boxed_args: Any) -> bytes:
    """Build a REQUEST payload for handler code ``handler`` with boxed arguments."""
    return b"".join(
        (
            _REQUEST_HEAD,
            _dump_int(seq),
            _PAIR,
            _dump_int(handler),
            _dump(boxed_args),
        )
    )


def encode_reply(seq: int, boxed_value: Any) -> bytes:
    """Build a REPLY payload for request ``seq`` carrying a boxed value."""
    return b"".join((_REPLY_HEAD, _dump_int(seq), _dump(boxed_value)))


def encode_exception(seq: int, exc_data: Any) -> bytes:
    """Build an EXCEPTION payload for the failed request ``seq``.

    Args:
        seq: the sequence number of the failed request.
        exc_data: the result of ``vinegar.dump_exception``.
    """
    return b"".join((_EXCEPTION_HEAD, _dump_int(seq), _dump(exc_data)))


def decode_message(payload: bytes) -> Tuple[int, int, Any]:
    """Split a payload into ``(msg_type, seq, body)``.

    For REQUEST the body is checked to be ``(handler_code, boxed_args)`` with an int handler
    code. Whether that code is a known handler is left to the caller (see
    ``wire.HANDLER_NAMES``), because stock replies to an unknown code with an EXCEPTION
    message and keeps the connection open.

    Raises:
        ProtocolError: an empty payload, an unknown msg_type, undecodable brine, a body that
            is not a 2-tuple ``(seq, body)``, a seq that is not an int, or a malformed
            request body.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    # Fast path: a seq brine writes as an immediate or a u8-length int, and a body seen
    # before. Anything else takes the full decode below, which also fills the cache.
    if len(payload) > 3 and payload[1] == _PAIR_TAG:
        cache = _BODY_CACHES.get(payload[0])
        tag = payload[2]
        if cache is not None and _IMM_FIRST <= tag <= _IMM_LAST:
            body = cache.get(payload[3:], _MISSING)
            if body is not _MISSING:
                return payload[0], tag - IMM_OFFSET, body
        elif cache is not None and tag == TAG_INT_U8:
            end = 4 + payload[3]
            digits = payload[4:end]
            if len(digits) == payload[3] and _is_int_text(digits):
                body = cache.get(payload[end:], _MISSING)
                if body is not _MISSING:
                    return payload[0], int(digits), body
    msg_type, seq, body = _decode_full(payload)
    _remember(payload, msg_type, body)
    return msg_type, seq, body


def _remember(payload: bytes, msg_type: int, body: Any) -> None:
    if len(payload) < 4 or payload[1] != _PAIR_TAG:
        return
    tag = payload[2]
    if _IMM_FIRST <= tag <= _IMM_LAST:
        start = 3
    elif tag == TAG_INT_U8:
        start = 4 + payload[3]
    else:
        return
    if len(payload) - start > _CACHED_BODY_MAX_BYTES:
        return
    cache = _BODY_CACHES[msg_type]
    if len(cache) >= _CACHED_BODIES_MAX:
        cache.clear()
    cache[payload[start:]] = body


def _decode_full(payload: bytes) -> Tuple[int, int, Any]:
    if not payload:
        raise ProtocolError("received an empty message payload")
    msg_type = payload[0]
    if msg_type != MSG_REQUEST and msg_type != MSG_REPLY and msg_type != MSG_EXCEPTION:
        raise ProtocolError(
            "received unknown message type %d; the peer may use thread binding or an "
            "rpyc version before 6.0" % msg_type
        )
    try:
        message = _load(payload, 1)
    except BrineError as exc:
        raise BrineError(
            "message of type %d is malformed: %s" % (msg_type, exc)
        ) from None
    if type(message) is not tuple or len(message) != 2:
        raise ProtocolError(
            "message of type %d must be a 2-tuple (seq, body), not %s"
            % (msg_type, _describe(message))
        )
    seq, body = message
    if type(seq) is not int:
        raise ProtocolError(
            "message of type %d has a sequence number of type %s, expected int"
            % (msg_type, type(seq).__name__)
        )
    if msg_type == MSG_REQUEST and (
        type(body) is not tuple or len(body) != 2 or type(body[0]) is not int
    ):
        raise ProtocolError(
            "request seq %d must have the body (handler_code, args), not %s"
            % (seq, _describe(body))
        )
    return msg_type, seq, body


def _describe(value: Any) -> str:
    if type(value) is tuple:
        return "a tuple of %d items" % len(value)
    return "a value of type %s" % type(value).__name__
