"""Frames: exact stock bytes, compression threshold, incremental decoding and size caps."""

from __future__ import annotations

import io
import zlib

import pytest

from rpyc_engine.protocol import messages
from rpyc_engine.protocol.errors import FrameTooLarge, FramingError, ProtocolError
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame, read_frame

GETROOT_FRAME = bytes.fromhex("00 00 00 08 00 01 11 50 11 53 11 51 02 0a")
CLOSE_SEQ44_FRAME = bytes.fromhex("00 00 00 08 00 01 11 7c 11 52 11 51 02 0a")
REPLY_SEQ3_FRAME = bytes.fromhex("00 00 00 06 00 02 11 53 11 51 53 0a")
STOP_ITERATION_SEQ32_FRAME = bytes.fromhex("00 00 00 04 00 03 11 70 51 0a")


def test_getroot_frame_exact():
    assert encode_frame(messages.encode_request(0, 3, (1, ()))) == GETROOT_FRAME


def test_close_frame_exact():
    assert encode_frame(messages.encode_request(44, 2, (1, ()))) == CLOSE_SEQ44_FRAME


def test_reply_frame_exact():
    assert encode_frame(messages.encode_reply(3, (1, 3))) == REPLY_SEQ3_FRAME


def test_reply_seq_200_uses_int_text():
    payload = messages.encode_reply(200, (1, 3))
    assert payload[:7] == bytes.fromhex("02 11 16 03 32 30 30")


def test_stop_iteration_frame_exact():
    assert encode_frame(messages.encode_exception(32, 1)) == STOP_ITERATION_SEQ32_FRAME


def test_frame_is_one_bytes_object():
    frame = encode_frame(b"abc")
    assert type(frame) is bytes
    assert frame == b"\x00\x00\x00\x03\x00abc\n"


def test_payload_of_3000_bytes_sent_raw():
    payload = b"p" * 3000
    frame = encode_frame(payload)
    assert frame[4] == 0
    assert frame[5:-1] == payload


def test_payload_of_3001_bytes_compressed_level_1():
    payload = b"p" * 3001
    frame = encode_frame(payload)
    assert frame[4] == 1
    assert frame[5:7] == b"\x78\x01"
    assert int.from_bytes(frame[:4], "big") == len(frame) - 6
    assert zlib.decompress(frame[5:-1]) == payload


def test_compression_disabled_with_none():
    frame = encode_frame(b"p" * 10000, compress_threshold=None)
    assert frame[4] == 0


def test_custom_threshold():
    assert encode_frame(b"p" * 11, compress_threshold=10)[4] == 1
    assert encode_frame(b"p" * 10, compress_threshold=10)[4] == 0


def test_decoder_round_trip_both_forms():
    payloads = [b"small", b"q" * 5000, b"", bytes(range(256)) * 20]
    stream = b"".join(encode_frame(p) for p in payloads)
    assert FrameDecoder().feed(stream) == payloads


def test_decoder_accepts_any_trailer_byte():
    frame = GETROOT_FRAME[:-1] + b"X"
    assert FrameDecoder().feed(frame) == [GETROOT_FRAME[5:-1]]


def test_decoder_accepts_compressed_input():
    payload = messages.encode_request(0, 3, (1, ()))
    body = zlib.compress(payload, 6)
    frame = len(body).to_bytes(4, "big") + b"\x01" + body + b"\n"
    assert FrameDecoder().feed(frame) == [payload]


def test_decoder_treats_any_nonzero_flag_as_compressed():
    body = zlib.compress(b"payload")
    frame = len(body).to_bytes(4, "big") + b"\x07" + body + b"\n"
    assert FrameDecoder().feed(frame) == [b"payload"]


def test_decoder_byte_by_byte():
    stream = GETROOT_FRAME + CLOSE_SEQ44_FRAME + encode_frame(b"z" * 4000)
    decoder = FrameDecoder()
    payloads = []
    for index in range(len(stream)):
        payloads.extend(decoder.feed(stream[index : index + 1]))
    assert payloads == [GETROOT_FRAME[5:-1], CLOSE_SEQ44_FRAME[5:-1], b"z" * 4000]
    assert decoder.buffered == 0


def test_decoder_waits_for_trailer():
    decoder = FrameDecoder()
    assert decoder.feed(GETROOT_FRAME[:-1]) == []
    assert decoder.buffered == len(GETROOT_FRAME) - 1
    assert decoder.feed(b"\n") == [GETROOT_FRAME[5:-1]]


def test_decoder_accepts_bytearray_and_memoryview():
    decoder = FrameDecoder()
    assert decoder.feed(bytearray(GETROOT_FRAME[:3])) == []
    assert decoder.feed(memoryview(GETROOT_FRAME[3:])) == [GETROOT_FRAME[5:-1]]
    payloads = FrameDecoder().feed(memoryview(GETROOT_FRAME))
    assert payloads == [GETROOT_FRAME[5:-1]]
    assert type(payloads[0]) is bytes


def test_declared_length_over_cap_rejected_from_header():
    decoder = FrameDecoder(max_frame_size=100)
    header = (101).to_bytes(4, "big") + b"\x00"
    assert decoder.feed(header[:4]) == []
    with pytest.raises(FrameTooLarge, match="101"):
        decoder.feed(header[4:])


def test_declared_length_at_cap_accepted():
    decoder = FrameDecoder(max_frame_size=100)
    assert decoder.feed(encode_frame(b"a" * 100, None)) == [b"a" * 100]


def test_huge_declared_length_rejected():
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(b"\xff\xff\xff\xff\x00")


def test_zlib_bomb_over_cap_rejected():
    bomb = zlib.compress(b"\x00" * (10 * 1024 * 1024), 9)
    frame = len(bomb).to_bytes(4, "big") + b"\x01" + bomb + b"\n"
    decoder = FrameDecoder(max_frame_size=1024 * 1024)
    assert len(bomb) < 1024 * 1024
    with pytest.raises(FrameTooLarge, match="inflates"):
        decoder.feed(frame)


def test_inflated_size_at_cap_accepted():
    frame = encode_frame(b"a" * 5000)
    assert FrameDecoder(max_frame_size=5000).feed(frame) == [b"a" * 5000]
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame_size=4999).feed(frame)


@pytest.mark.parametrize(
    "body",
    [b"not zlib at all", zlib.compress(b"payload")[:-3], zlib.compress(b"payload") + b"junk"],
    ids=["garbage", "truncated stream", "data after stream"],
)
def test_corrupt_zlib_rejected(body):
    frame = len(body).to_bytes(4, "big") + b"\x01" + body + b"\n"
    with pytest.raises(FramingError):
        FrameDecoder().feed(frame)


def test_decoder_unusable_after_error():
    decoder = FrameDecoder(max_frame_size=10)
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"a" * 11, None))
    with pytest.raises(FramingError, match="unusable"):
        decoder.feed(GETROOT_FRAME)


def test_framing_errors_are_protocol_errors():
    assert issubclass(FrameTooLarge, FramingError)
    assert issubclass(FramingError, ProtocolError)


def _reader(data: bytes):
    stream = io.BytesIO(data)

    def read_exact(size: int) -> bytes:
        chunk = stream.read(size)
        if len(chunk) != size:
            raise EOFError("stream ended")
        return chunk

    return read_exact


def test_read_frame_reads_consecutive_frames():
    read_exact = _reader(GETROOT_FRAME + encode_frame(b"y" * 4000))
    assert read_frame(read_exact) == GETROOT_FRAME[5:-1]
    assert read_frame(read_exact) == b"y" * 4000


def test_read_frame_rejects_over_cap_before_reading_body():
    requested = []

    def read_exact(size: int) -> bytes:
        requested.append(size)
        return (1000).to_bytes(4, "big") + b"\x00"

    with pytest.raises(FrameTooLarge):
        read_frame(read_exact, max_frame_size=999)
    assert requested == [5]


def test_read_frame_rejects_zlib_bomb():
    bomb = zlib.compress(b"\x00" * 2_000_000, 9)
    frame = len(bomb).to_bytes(4, "big") + b"\x01" + bomb + b"\n"
    with pytest.raises(FrameTooLarge):
        read_frame(_reader(frame), max_frame_size=100_000)
