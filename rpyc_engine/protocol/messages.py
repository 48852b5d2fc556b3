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

from typing import Any, Tuple

from . import brine
from .errors import BrineError, ProtocolError
from .wire import MSG_EXCEPTION, MSG_REPLY, MSG_REQUEST

__all__ = ["decode_message", "encode_exception", "encode_reply", "encode_request"]

_REQUEST_BYTE = bytes((MSG_REQUEST,))
_REPLY_BYTE = bytes((MSG_REPLY,))
_EXCEPTION_BYTE = bytes((MSG_EXCEPTION,))
_dump = brine.dump
_load = brine.load


def encode_request(seq: int, handler: int, boxed_args: Any) -> bytes:
    """Build a REQUEST payload for handler code ``handler`` with boxed arguments."""
    return _REQUEST_BYTE + _dump((seq, (handler, boxed_args)))


def encode_reply(seq: int, boxed_value: Any) -> bytes:
    """Build a REPLY payload for request ``seq`` carrying a boxed value."""
    return _REPLY_BYTE + _dump((seq, boxed_value))


def encode_exception(seq: int, exc_data: Any) -> bytes:
    """Build an EXCEPTION payload for the failed request ``seq``.

    Args:
        seq: the sequence number of the failed request.
        exc_data: the result of ``vinegar.dump_exception``.
    """
    return _EXCEPTION_BYTE + _dump((seq, exc_data))


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
        raise BrineError("message of type %d is malformed: %s" % (msg_type, exc)) from None
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
