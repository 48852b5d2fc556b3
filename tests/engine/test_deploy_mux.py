"""The deploy channel multiplexer, with two ends joined by socketpairs (no SSH)."""

from __future__ import annotations

import select
import socket
import threading

import pytest

from rpyc_engine.deploy import mux
from rpyc_engine.protocol.errors import ConnectionClosed


def _pair(noise: bytes = b""):
    """Return (client, server) multiplexers; the server echoes every channel."""
    up_client, up_server = socket.socketpair()
    down_server, down_client = socket.socketpair()

    def echo(sock: socket.socket) -> None:
        def run() -> None:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
            sock.close()

        threading.Thread(target=run, daemon=True).start()

    server = mux.Multiplexer(
        up_server.recv, down_server.sendall, on_open=echo, name="server"
    )
    client = mux.Multiplexer(
        down_client.recv, up_client.sendall, name="client", expect_preamble=mux.PREAMBLE
    )
    down_server.sendall(noise + mux.PREAMBLE)
    server.start()
    client.start()
    return client, server, (up_client, up_server, down_server, down_client)


@pytest.fixture
def joined():
    client, server, sockets = _pair(noise=b"Welcome to the host!\n")
    yield client, server, sockets
    client.shutdown("test over")
    server.shutdown("test over")
    for sock in sockets:
        sock.close()


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "channel closed early"
        data += chunk
    return data


def test_channels_carry_data_independently(joined):
    """Two channels echo their own bytes, including a payload larger than one frame."""
    client, _server, _sockets = joined
    first = client.open_channel()
    second = client.open_channel()
    first.settimeout(10)
    second.settimeout(10)
    big = bytes(range(256)) * 4096  # 1 MiB, several DATA frames
    first.sendall(b"one")
    second.sendall(big)
    assert _receive(first, 3) == b"one"
    assert _receive(second, len(big)) == big


def test_half_close_reaches_peer(joined):
    """Shutting a channel's write side gives the peer EOF, which closes the echo."""
    client, _server, _sockets = joined
    channel = client.open_channel()
    channel.settimeout(10)
    channel.sendall(b"last")
    channel.shutdown(socket.SHUT_WR)
    assert _receive(channel, 4) == b"last"
    assert channel.recv(10) == b""


def test_stream_end_cuts_channels(joined):
    """When the carrying stream ends, every open channel reads EOF."""
    client, _server, sockets = joined
    channel = client.open_channel()
    channel.settimeout(10)
    sockets[2].shutdown(socket.SHUT_WR)  # the server's downstream end
    assert client.closed.wait(10)
    assert client.close_reason == "end of stream"
    assert channel.recv(10) == b""


def test_ping_gets_pong():
    """A PING on the control channel is answered with a PONG carrying the same data."""
    pongs = []
    got = threading.Event()
    client, server, sockets = _pair()
    client._on_control = lambda kind, message: (
        pongs.append((kind, message)),
        got.set(),
    )
    try:
        client.send_control(mux.PING, {"n": 7})
        assert got.wait(10)
        assert pongs == [(mux.PONG, {"n": 7})]
    finally:
        client.shutdown("test over")
        server.shutdown("test over")
        for sock in sockets:
            sock.close()


def test_missing_preamble_is_an_error():
    """A peer that sends only noise closes the stream with a clear reason."""
    reader, writer = socket.socketpair()
    client = mux.Multiplexer(
        reader.recv, reader.sendall, name="client", expect_preamble=b"XX"
    )
    client.start()
    writer.sendall(b"n" * (mux.MAX_NOISE + 10))
    assert client.closed.wait(10)
    assert "no stream preamble" in client.close_reason
    reader.close()
    writer.close()


def _readable(sock: socket.socket):
    def wait(timeout):
        readable, _, _ = select.select([sock], [], [], timeout)
        return bool(readable)

    return wait


def _stream_pair():
    """Return (client, server, sockets); both sides read in the channel's own thread.

    The server echoes every channel, reading and writing it as a `MuxStream`.
    """
    up_client, up_server = socket.socketpair()
    down_server, down_client = socket.socketpair()
    readers = []

    def recv_from(sock):
        def recv(size):
            readers.append(threading.current_thread().name)
            return sock.recv(size)

        return recv

    def echo(stream) -> None:
        def run() -> None:
            try:
                while True:
                    stream.write(stream.read_within(1.0))
            except ConnectionClosed:
                stream.close()

        threading.Thread(target=run, daemon=True).start()

    server = mux.Multiplexer(
        up_server.recv,
        down_server.sendall,
        on_open=echo,
        name="server",
        wait_readable=_readable(up_server),
        accept_streams=True,
    )
    client = mux.Multiplexer(
        recv_from(down_client),
        up_client.sendall,
        name="client",
        expect_preamble=mux.PREAMBLE,
        wait_readable=_readable(down_client),
    )
    down_server.sendall(mux.PREAMBLE)
    server.start()
    client.start()
    return client, server, (up_client, up_server, down_server, down_client), readers


@pytest.fixture
def streams():
    client, server, sockets, readers = _stream_pair()
    yield client, readers
    client.shutdown("test over")
    server.shutdown("test over")
    for sock in sockets:
        sock.close()


def _read_stream(stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += stream.read_within(10)
    return data


def test_streams_echo_concurrently(streams):
    """Two streams read by two threads at once each get their own bytes back."""
    client, _readers = streams
    big = bytes(range(256)) * 4096  # 1 MiB, several DATA frames
    results = {}

    def talk(name: str, payload: bytes) -> None:
        stream = client.open_stream()
        stream.write(payload)
        results[name] = _read_stream(stream, len(payload))
        stream.close()

    threads = [
        threading.Thread(target=talk, args=("big", big)),
        threading.Thread(target=talk, args=("small", b"one" * 100)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"big": big, "small": b"one" * 100}


def test_stream_reads_pipe_in_calling_thread(streams):
    """A busy stream reads the carrying stream itself, not through the mux thread."""
    client, readers = streams
    stream = client.open_stream()
    me = threading.current_thread().name
    seen = []
    # The mux thread may step in after a pause (a loaded machine): some attempt of
    # several back-to-back round trips must be read by this thread alone.
    for _attempt in range(5):
        for round_trip in range(20):
            message = b"ping %d" % round_trip
            if round_trip == 10:
                del readers[:]
            stream.write(message)
            assert _read_stream(stream, len(message)) == message
        seen = set(readers)
        if seen == {me}:
            break
    assert seen == {me}


def test_stream_end_ends_stream_reads(streams):
    """When the carrying stream ends, a stream read raises ConnectionClosed."""
    client, _readers = streams
    stream = client.open_stream()
    client.shutdown("gone")
    with pytest.raises(ConnectionClosed, match="gone"):
        stream.read_within(10)
