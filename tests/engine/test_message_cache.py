"""The decode cache of protocol.messages: repeated bodies decode once, checks still hold.

A repeated call sends the same body with only the sequence number changing, so
decode_message caches bodies it has fully decoded and checked. These tests pin what
the cache must never change: the seq that comes back, the errors for malformed input,
and its bound on memory.
"""

import pytest

from rpyc_engine.protocol import brine, messages, wire
from rpyc_engine.protocol.errors import ProtocolError


def _request(seq, handler=wire.HANDLE_PING, args=(wire.LABEL_VALUE, ("x",))):
    return messages.encode_request(seq, handler, args)


@pytest.mark.parametrize("seq", [0, 7, 159, 160, 255, 10_000, 2**40])
def test_repeated_body_keeps_its_seq(seq):
    first = messages.decode_message(_request(1))
    again = messages.decode_message(_request(seq))
    assert first[0] == again[0] == wire.MSG_REQUEST
    assert again[1] == seq
    assert again[2] == first[2]


def test_cached_body_with_bad_seq_text_is_rejected():
    messages.decode_message(_request(200))
    payload = bytearray(_request(200))
    # Byte 2 is the u8-length int tag; the digits follow the length byte.
    assert payload[2] == wire.TAG_INT_U8
    payload[4] = ord("x")
    with pytest.raises(ProtocolError):
        messages.decode_message(bytes(payload))


def test_cached_body_with_truncated_seq_is_rejected():
    messages.decode_message(_request(300))
    payload = _request(300)
    with pytest.raises(ProtocolError):
        messages.decode_message(payload[:5])


def test_malformed_request_body_is_never_cached():
    body = brine.dump((3, ("not-a-handler", (wire.LABEL_VALUE, ()))))
    payload = bytes([wire.MSG_REQUEST]) + body
    for _ in range(2):
        with pytest.raises(ProtocolError):
            messages.decode_message(payload)


def test_cache_stays_bounded():
    for number in range(3 * messages._CACHED_BODIES_MAX):
        messages.decode_message(_request(1, args=(wire.LABEL_VALUE, (number,))))
    for cache in messages._BODY_CACHES.values():
        assert len(cache) <= messages._CACHED_BODIES_MAX


def test_large_bodies_are_not_cached():
    big = "y" * (2 * messages._CACHED_BODY_MAX_BYTES)
    payload = _request(1, args=(wire.LABEL_VALUE, (big,)))
    messages.decode_message(payload)
    cached = messages._BODY_CACHES[wire.MSG_REQUEST]
    assert all(len(key) <= messages._CACHED_BODY_MAX_BYTES for key in cached)
