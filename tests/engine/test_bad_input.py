"""Hand-made hostile frames against a live server; a well-behaved client must keep working."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest
from engine_services import CalcService

from rpyc_engine.protocol import brine, vinegar, wire
from rpyc_engine.protocol.framing import FrameDecoder, encode_frame
from rpyc_engine.protocol.messages import decode_message, encode_request

pytestmark = pytest.mark.timeout(60)

MAX_FRAME = 1024 * 1024


class RawPeer:
    """A client that writes frames by hand and reads the server's messages."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.decoder = FrameDecoder()
        self.messages = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_payload(self, payload: bytes) -> None:
        self.send_raw(encode_frame(payload))

    def request(self, seq: int, handler: int, boxed_args) -> None:
        self.send_payload(encode_request(seq, handler, boxed_args))

    def read_message(self):
        while not self.messages:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.messages.extend(self.decoder.feed(data))
        return decode_message(self.messages.pop(0))

    def reply_to(self, seq: int, handler: int, boxed_args):
        self.request(seq, handler, boxed_args)
        return self.read_message()

    def read_until_eof(self) -> list:
        """Return the messages received before the server closed the socket."""
        received = []
        while True:
            try:
                received.append(self.read_message())
            except EOFError:
                return received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(make_server):
    return make_server(CalcService, {"max_frame_size": MAX_FRAME})


@pytest.fixture
def good(server, make_client):
    """A well-behaved client connected before the hostile one."""
    conn = make_client(server.port)
    assert conn.root.add(1, 1) == 2
    yield conn
    assert conn.root.add(2, 2) == 4
    assert not conn.closed


@pytest.fixture
def raw(server, good):
    peer = RawPeer(server.port)
    yield peer
    peer.close()


def _root_id_pack(raw: RawPeer, seq: int = 0) -> tuple:
    msg_type, reply_seq, body = raw.reply_to(
        seq, wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ())
    )
    assert (msg_type, reply_seq) == (wire.MSG_REPLY, seq)
    assert body[0] == wire.LABEL_REMOTE_REF
    return body[1]


def _exception(message) -> BaseException:
    msg_type, _, body = message
    assert msg_type == wire.MSG_EXCEPTION
    return vinegar.load_exception(body)


def _ping_works(raw: RawPeer, seq: int) -> bool:
    message = raw.reply_to(seq, wire.HANDLE_PING, (wire.LABEL_VALUE, ("alive",)))
    return message == (wire.MSG_REPLY, seq, (wire.LABEL_VALUE, "alive"))


def _wait_closed(conn, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not conn.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    return conn.closed


def test_truncated_frame_then_close(server, good, raw):
    raw.send_raw(struct.pack("!LB", 100, 0) + b"0123456789")
    raw.close()
    connections = server.wait_connections(2)
    assert _wait_closed(connections[1])
    assert not connections[0].closed


def test_unknown_message_type(server, good, raw, caplog):
    caplog.set_level(logging.WARNING)
    raw.send_payload(b"\x09" + brine.dump((0, None)))
    received = raw.read_until_eof()
    # At most our own CLOSE request comes back before the socket closes.
    assert all(message[0] == wire.MSG_REQUEST for message in received)
    assert "unknown message type 9" in caplog.text


def test_malformed_brine(server, good, raw, caplog):
    caplog.set_level(logging.WARNING)
    raw.send_payload(bytes([wire.MSG_REQUEST, 0x07]))
    raw.read_until_eof()
    assert "malformed" in caplog.text


def test_frame_over_size_cap(server, good, raw, caplog):
    caplog.set_level(logging.WARNING)
    raw.send_raw(struct.pack("!LB", 2**31, 0))
    raw.read_until_eof()
    assert str(2**31) in caplog.text


def test_compressed_frame_inflating_over_cap(server, good, raw, caplog):
    import zlib

    caplog.set_level(logging.WARNING)
    body = zlib.compress(b"\x00" * (MAX_FRAME * 4), 1)
    raw.send_raw(struct.pack("!LB", len(body), 1) + body + b"\n")
    raw.read_until_eof()
    assert caplog.text


def test_unknown_handler(raw):
    error = _exception(raw.reply_to(0, 99, (wire.LABEL_VALUE, ())))
    assert isinstance(error, KeyError)
    assert error.args == (99,)
    assert _ping_works(raw, 1)


def test_unknown_label(raw):
    error = _exception(raw.reply_to(0, wire.HANDLE_PING, (7, ("x",))))
    assert isinstance(error, ValueError)
    assert error.args == ("invalid label 7",)
    assert _ping_works(raw, 1)


def test_wrong_arity(raw):
    root = _root_id_pack(raw)
    args = (wire.LABEL_TUPLE, ((wire.LABEL_LOCAL_REF, root),))
    error = _exception(raw.reply_to(1, wire.HANDLE_GETATTR, args))
    assert isinstance(error, TypeError)
    assert error.args == ("GETATTR takes 2 arguments, got 1",)
    assert _ping_works(raw, 2)


def test_cmp_operator_not_allowed(raw):
    root = _root_id_pack(raw)
    args = (
        wire.LABEL_TUPLE,
        (
            (wire.LABEL_LOCAL_REF, root),
            (wire.LABEL_VALUE, 1),
            (wire.LABEL_VALUE, "__setattr__"),
        ),
    )
    error = _exception(raw.reply_to(1, wire.HANDLE_CMP, args))
    assert isinstance(error, AttributeError)
    assert error.args == ("cannot access '__setattr__'",)
    assert _ping_works(raw, 2)


def test_del_unknown_id_pack(raw):
    args = (
        wire.LABEL_TUPLE,
        ((wire.LABEL_LOCAL_REF, ("x.Y", 1, 2)), (wire.LABEL_VALUE, 1)),
    )
    error = _exception(raw.reply_to(0, wire.HANDLE_DEL, args))
    assert isinstance(error, KeyError)
    assert _ping_works(raw, 1)


def test_inspect_unknown_id_pack(raw):
    args = (wire.LABEL_VALUE, (("x.Y", 1, 2),))
    error = _exception(raw.reply_to(0, wire.HANDLE_INSPECT, args))
    assert isinstance(error, KeyError)
    assert _ping_works(raw, 1)


def test_invalid_id_pack(raw):
    args = (
        wire.LABEL_TUPLE,
        ((wire.LABEL_LOCAL_REF, ("x.Y", "one", 2)), (wire.LABEL_VALUE, 1)),
    )
    error = _exception(raw.reply_to(0, wire.HANDLE_DEL, args))
    assert isinstance(error, ValueError)
    assert "invalid id_pack" in error.args[0]
    assert _ping_works(raw, 1)


def test_bad_call_arguments_execute_nothing(server, raw):
    root = _root_id_pack(raw)
    args = (
        wire.LABEL_TUPLE,
        (
            (wire.LABEL_LOCAL_REF, root),
            (wire.LABEL_VALUE, "keep"),
            (wire.LABEL_VALUE, 5),
        ),
    )
    error = _exception(raw.reply_to(1, wire.HANDLE_CALLATTR, args))
    assert isinstance(error, TypeError)
    assert "call arguments must be a tuple" in error.args[0]
    kwargs = (wire.LABEL_VALUE, ((5, "value"),))
    args = (
        wire.LABEL_TUPLE,
        (
            (wire.LABEL_LOCAL_REF, root),
            (wire.LABEL_VALUE, "keep"),
            (wire.LABEL_VALUE, ()),
            kwargs,
        ),
    )
    error = _exception(raw.reply_to(2, wire.HANDLE_CALLATTR, args))
    assert isinstance(error, TypeError)
    assert error.args == ("name must be a string",)
    hostile = server.wait_connections(2)[1]
    assert hostile._local_root.kept == []


def test_reply_with_unknown_seq_is_dropped(raw):
    raw.send_payload(
        bytes([wire.MSG_REPLY]) + brine.dump((1234, (wire.LABEL_VALUE, None)))
    )
    assert _ping_works(raw, 0)


def test_close_request_closes_without_reply(raw):
    raw.request(0, wire.HANDLE_CLOSE, (wire.LABEL_VALUE, ()))
    assert raw.read_until_eof() == []


def test_request_body_not_a_pair(server, good, raw, caplog):
    caplog.set_level(logging.WARNING)
    raw.send_payload(bytes([wire.MSG_REQUEST]) + brine.dump((0, (1, 2, 3))))
    raw.read_until_eof()
    assert "request seq 0" in caplog.text
