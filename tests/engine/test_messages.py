"""Message layer: encoding of the three message types and validation on decode."""

from __future__ import annotations

import pytest

from rpyc_engine.protocol import brine, wire
from rpyc_engine.protocol.errors import BrineError, ProtocolError
from rpyc_engine.protocol.messages import (
    decode_message,
    encode_exception,
    encode_reply,
    encode_request,
)


def test_getroot_request_payload():
    payload = encode_request(0, wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ()))
    assert payload == bytes.fromhex("01 11 50 11 53 11 51 02")


def test_decode_request():
    payload = encode_request(7, wire.HANDLE_GETATTR, (2, ((3, ("m.C", 1, 2)), (1, "x"))))
    msg_type, seq, body = decode_message(payload)
    assert msg_type == wire.MSG_REQUEST
    assert seq == 7
    assert body == (wire.HANDLE_GETATTR, (2, ((3, ("m.C", 1, 2)), (1, "x"))))


def test_decode_reply_and_exception():
    assert decode_message(encode_reply(3, (1, 3))) == (wire.MSG_REPLY, 3, (1, 3))
    assert decode_message(encode_exception(32, 1)) == (wire.MSG_EXCEPTION, 32, 1)


def test_decode_large_seq():
    assert decode_message(encode_reply(2**40, (1, None)))[1] == 2**40


def test_decode_accepts_bytearray():
    assert decode_message(bytearray(encode_reply(1, (1, 2))))[1] == 1


def test_unknown_handler_code_left_to_caller():
    assert decode_message(encode_request(1, 99, (1, ())))[2] == (99, (1, ()))


def _payload(msg_type: int, value: object) -> bytes:
    return bytes((msg_type,)) + brine.dump(value)


MALFORMED = [
    ("empty payload", b""),
    ("unknown msg type 9", _payload(9, (0, None))),
    ("msg type 0", _payload(0, (0, None))),
    ("5.x style payload", brine.dump((1, 0, (3, (1, ()))))),
    ("type byte only", b"\x02"),
    ("bad brine", b"\x02\x07"),
    ("trailing bytes", encode_reply(1, None) + b"\x00"),
    ("body not a tuple", _payload(2, 5)),
    ("body 3-tuple", _payload(2, (1, 2, 3))),
    ("body 1-tuple", _payload(2, (1,))),
    ("seq is str", _payload(2, ("1", None))),
    ("seq is bool", _payload(2, (True, None))),
    ("seq is float", _payload(3, (1.0, 1))),
    ("request body not a tuple", _payload(1, (0, 3))),
    ("request body 3-tuple", _payload(1, (0, (3, (1, ()), 0)))),
    ("request handler is str", _payload(1, (0, ("3", (1, ()))))),
    ("request handler is bool", _payload(1, (0, (True, (1, ()))))),
]


@pytest.mark.parametrize("case,payload", MALFORMED, ids=[c for c, _ in MALFORMED])
def test_malformed_raises_protocol_error(case, payload):
    with pytest.raises(ProtocolError):
        decode_message(payload)


def test_bad_brine_raises_brine_error():
    with pytest.raises(BrineError, match="type 2"):
        decode_message(b"\x02\x11\x51")
