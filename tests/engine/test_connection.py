"""Our client against our server over loopback TCP (and pipes, socket pairs, channels)."""

from __future__ import annotations

import gc
import os
import socket
import threading

import pytest
from engine_services import CalcService

import rpyc_engine
from rpyc_engine import (
    AsyncResultTimeout,
    BgServingThread,
    ConnectionClosed,
    Service,
    async_,
)
from rpyc_engine.drivers.streams import PipeStream
from rpyc_engine.factory import connect_channel, connect_socket, connect_stream

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(make_server):
    return make_server(CalcService)


@pytest.fixture
def conn(server, make_client):
    return make_client(server.port)


class ClientService(Service):
    """What the client offers the server: a callback target."""

    def __init__(self) -> None:
        self.calls = []

    def exposed_record(self, value):
        self.calls.append(value)
        return len(self.calls)


def test_root_is_cached_proxy(conn):
    root = conn.root
    assert root is conn.root
    assert "CalcService" in type(root).__name__


def test_call_exposed_method(conn):
    assert conn.root.add(2, 3) == 5
    assert conn.root.exposed_add("a", "b") == "ab"


def test_exposed_decorator(conn):
    assert conn.root.multiply(6, 7) == 42


def test_attribute_value(conn):
    assert conn.root.value == 42


def test_service_name(conn):
    assert conn.root.get_service_name() == "CALC"
    assert conn.root.get_service_aliases() == ("CALC",)


def test_keyword_arguments(conn):
    assert conn.root.call(lambda a, b=0: a - b, 10, b=3) == 7


def test_callback_into_client(conn):
    assert conn.root.call(lambda x, y: x * y, 6, 7) == 42


def test_server_calls_client_root(server, make_client):
    client_service = ClientService()
    conn = make_client(server.port, service=client_service)
    # The server reaches the client's root while the client waits in a call.
    assert conn.root.call_client_root("record", "hi") == 1
    assert client_service.calls == ["hi"]


def test_nested_callbacks(conn):
    root = conn.root

    def step(depth):
        return root.nested(step, depth)

    assert root.nested(step, 6) == (
        "level",
        6,
        ("level", 5, ("level", 4, ("level", 3, ("level", 2, ("level", 1, "bottom"))))),
    )


def test_remote_exception_has_traceback(conn):
    with pytest.raises(ValueError) as info:
        conn.root.fail("bad value")
    text = str(info.value)
    assert text.startswith("bad value")
    assert "Remote Traceback (1)" in text
    assert "exposed_fail" in text


def test_custom_exception_keeps_name(conn):
    with pytest.raises(Exception) as info:
        conn.root.fail_custom("oops")
    assert type(info.value).__name__.endswith("CustomError")
    assert "oops" in str(info.value)


def test_callback_exception_travels_back(conn):
    def callback():
        raise KeyError("from the client")

    with pytest.raises(KeyError) as info:
        conn.root.call(callback)
    text = str(info.value)
    assert "from the client" in text
    # The client's own traceback went to the server and came back inside the server's.
    assert "Remote Traceback (2)" in text
    assert "callback" in text


def test_list_proxy_protocols(conn):
    remote = conn.root.make_list(5)
    assert isinstance(remote, list)
    assert len(remote) == 5
    assert 3 in remote
    assert 9 not in remote
    assert remote[2] == 2
    assert list(remote[1:3]) == [1, 2]
    assert list(remote) == [0, 1, 2, 3, 4]


def test_list_proxy_mutation_refused(conn):
    remote = conn.root.make_list(2)
    with pytest.raises(AttributeError, match="cannot access 'append'"):
        remote.append(3)


def test_dict_proxy(conn):
    remote = conn.root.make_dict()
    assert remote["a"] == 1
    assert len(remote) == 2
    assert sorted(remote) == ["a", "b"]


def test_iterator_proxy(conn):
    assert list(conn.root.counter(4)) == [0, 1, 2, 3]


def test_mixed_tuple(conn):
    number, remote_list, text = conn.root.mixed_tuple()
    assert number == 1
    assert text == "three"
    assert list(remote_list) == [2]


def test_tuple_with_reference_round_trip(conn):
    local = [1, 2]
    value = conn.root.echo((1, local))
    assert value[0] == 1
    assert value[1] is local


def test_proxy_identity_is_kept(conn):
    root = conn.root
    assert root.echo(root) is root


def test_context_manager(conn):
    root = conn.root
    with root.context() as ctx:
        assert ctx.events() == ("enter",)
    assert ctx.events() == ("enter", ("exit", None))


def test_context_manager_sees_exception(conn):
    root = conn.root
    with pytest.raises(ZeroDivisionError):
        with root.context() as ctx:
            1 / 0
    assert ctx.events() == ("enter", ("exit", "ZeroDivisionError"))


def test_context_manager_suppresses(conn):
    with conn.root.context(True) as ctx:
        raise ValueError("suppressed by the remote __exit__")
    assert ctx.events()[-1] == ("exit", "ValueError")


def test_isinstance_between_engines(conn):
    root = conn.root
    box_class = root.Box
    assert isinstance(root.make_box(1), box_class)
    assert isinstance(root.make_subbox(1), box_class)
    assert not isinstance(root.make_list(1), box_class)
    assert not isinstance(box_class, box_class)
    assert isinstance(5, root.echo(int))


def test_issubclass_same_remote_class(conn):
    root = conn.root
    assert issubclass(root.Box, root.Box)
    assert not issubclass(int, root.Box)


def test_issubclass_needs_subclasscheck_access(conn, make_server, make_client):
    # Between different classes the owner runs __subclasscheck__, which the default
    # access rule refuses and a permissive one allows.
    with pytest.raises(AttributeError, match="cannot access '__subclasscheck__'"):
        issubclass(conn.root.SubBox, conn.root.Box)
    open_server = make_server(CalcService, {"allow_all_attrs": True})
    root = make_client(open_server.port).root
    assert issubclass(root.SubBox, root.Box)
    assert not issubclass(root.Box, root.SubBox)


def test_remote_class_construction(conn):
    box = conn.root.Box(7)
    assert box.get() == 7


def test_dir_repr_str_hash(conn):
    box = conn.root.make_box("x")
    assert "exposed_get" in dir(box)
    assert repr(box) == "Box('x')"
    assert str(box) == "box of x"
    assert hash(box) == hash("x")


def test_comparisons(conn):
    root = conn.root
    assert root.make_box(1) == root.make_box(1)
    assert root.make_box(1) != root.make_box(2)
    assert root.make_list(2) < root.make_list(3)
    # A local list is a reference on the peer, so list.__eq__ there returns
    # NotImplemented, and Python falls back to identity here (stock behaves the same).
    assert root.make_list(2) != [0, 1]


def test_large_payloads(conn):
    size = 5 * 1024 * 1024
    blob = conn.root.blob(size)
    assert len(blob) == size
    random_data = os.urandom(3 * 1024 * 1024)
    assert conn.root.echo(random_data) == random_data
    assert conn.root.length(random_data) == len(random_data)


def test_large_tuple(conn):
    data = tuple(range(100_000))
    assert conn.root.echo(data) == data


def test_releases_drain_export_table(server, conn):
    (server_side,) = server.wait_connections(1)
    root = conn.root
    baseline = len(server_side._exports)
    proxies = [root.make_list(3) for _ in range(300)]
    assert len(server_side._exports) >= baseline + 300
    del proxies
    gc.collect()
    conn.ping()
    assert len(server_side._exports) == baseline


def test_server_releases_client_objects(server, conn):
    root = conn.root
    baseline = len(conn._exports)
    for index in range(100):
        root.keep(lambda index=index: index)
    assert len(conn._exports) == baseline + 100
    assert list(root.call_kept()) == list(range(100))
    root.drop()
    assert len(conn._exports) == baseline


def test_export_counts_match_transmissions(server, conn):
    (server_side,) = server.wait_connections(1)
    root = conn.root
    box = root.make_box(1)
    for _ in range(5):
        assert root.echo(box) is box
    box_id = rpyc_engine.netref.get_id_pack(box)
    assert server_side._exports._entries[box_id][1] == 6
    del box
    gc.collect()
    conn.ping()
    assert box_id not in server_side._exports._entries


def test_many_threads_one_connection(conn):
    root = conn.root
    add = root.add
    errors = []
    results = {}

    def worker(number):
        try:
            total = 0
            for index in range(200):
                total += add(index, number)
                if index % 50 == 0:
                    assert root.call(lambda: number) == number
            results[number] = total
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    assert not errors
    assert all(not thread.is_alive() for thread in threads)
    assert results == {number: sum(range(200)) + 200 * number for number in range(8)}


def test_async_call(conn):
    result = async_(conn.root.sleep)(0.1, "done")
    assert result.value == "done"
    assert result.ready
    assert not result.error


def test_async_callback(conn):
    seen = []
    result = async_(conn.root.add)(1, 2)
    result.add_callback(lambda res: seen.append(res.value))
    result.wait(10)
    assert seen == [3]


def test_async_error(conn):
    result = async_(conn.root.fail)("async failure")
    result.wait(10)
    assert result.error
    with pytest.raises(ValueError, match="async failure"):
        result.value


def test_async_refuses_local_function():
    with pytest.raises(TypeError, match="needs a proxy"):
        async_(len)


def test_sync_timeout_then_connection_still_works(server, make_client):
    conn = make_client(server.port, config={"sync_request_timeout": 0.2})
    root = conn.root
    with pytest.raises(AsyncResultTimeout):
        root.sleep(1.0, "late")
    # The server answers the ping after the sleep; the late reply is dropped on the way.
    conn.ping("still open", timeout=30)


def test_async_expiry(conn):
    result = async_(conn.root.sleep)(1.0)
    result.set_expiry(0.1)
    with pytest.raises(AsyncResultTimeout):
        result.value


def test_ping(conn):
    conn.ping()
    conn.ping("custom data")


def test_close_by_client(server, conn):
    conn.root.add(1, 1)
    (server_side,) = server.wait_connections(1)
    conn.close()
    assert conn.closed
    for thread in server.threads:
        thread.join(10)
    assert server_side.closed
    with pytest.raises(ConnectionClosed):
        conn.root.add(1, 1)


def test_waiter_gets_connection_closed(server, conn):
    root = conn.root
    (server_side,) = server.wait_connections(1)
    errors = []

    def waiter():
        try:
            root.sleep(2)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    threading.Timer(0.2, server_side._driver.stream.close).start()
    thread.join(20)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], ConnectionClosed)
    assert isinstance(errors[0], EOFError)


def test_close_is_idempotent(conn):
    conn.close()
    conn.close()
    assert conn.closed


def test_on_connect_and_disconnect():
    events = []

    class Watcher(Service):
        def on_connect(self, conn):
            events.append(("connect", conn.connid))

        def on_disconnect(self, conn):
            events.append(("disconnect", conn.connid))

    left, right = socket.socketpair()
    server_side = connect_socket(left, Watcher)
    client = connect_socket(right)
    thread = threading.Thread(target=server_side.serve_all)
    thread.start()
    client.ping()
    client.close()
    thread.join(10)
    assert events == [
        ("connect", server_side.connid),
        ("disconnect", server_side.connid),
    ]


def test_socketpair_vertical_slice():
    left, right = socket.socketpair()
    server_side = connect_socket(left, CalcService)
    client = connect_socket(right)
    thread = threading.Thread(target=server_side.serve_all)
    thread.start()
    try:
        root = client.root
        assert root.add(1, 2) == 3
        assert root.call(lambda value: value + 1, 41) == 42
    finally:
        client.close()
        thread.join(10)
    assert not thread.is_alive()


def test_pipe_streams():
    client_stream, server_stream = PipeStream.create_pair()
    server_side = connect_stream(server_stream, CalcService)
    client = connect_stream(client_stream)
    thread = threading.Thread(target=server_side.serve_all)
    thread.start()
    try:
        assert client.root.add(20, 22) == 42
        assert client.root.call(lambda: "via pipes") == "via pipes"
        assert len(client.root.blob(100_000)) == 100_000
    finally:
        client.close()
        thread.join(10)
    assert not thread.is_alive()


def test_channel_stream():
    # A socket has recv/sendall/close/fileno, the interface paramiko channels offer.
    left, right = socket.socketpair()
    server_side = connect_channel(left, CalcService)
    client = connect_channel(right)
    thread = threading.Thread(target=server_side.serve_all)
    thread.start()
    try:
        assert client.root.add(1, 2) == 3
    finally:
        client.close()
        thread.join(10)
    assert not thread.is_alive()


def test_background_serving_thread(server, make_client):
    client_service = ClientService()
    conn = make_client(server.port, service=client_service)
    (server_side,) = server.wait_connections(1)
    conn.root.keep(conn.root)  # make sure the connection is in use
    bg = BgServingThread(conn)
    try:
        # The server calls the client while no client thread waits for a reply.
        result = async_(server_side.root.record)("from server")
        result.wait(10)
        assert result.value == 1
    finally:
        bg.stop()
    assert not bg.active
    assert client_service.calls == ["from server"]


def test_on_connect_failure_closes_stream():
    class Broken(Service):
        def on_connect(self, conn):
            raise RuntimeError("refused by on_connect")

        def on_disconnect(self, conn):
            raise AssertionError("on_disconnect must not run after a failed connect")

    left, right = socket.socketpair()
    with pytest.raises(RuntimeError, match="refused by on_connect"):
        connect_socket(left, Broken)
    right.settimeout(10)
    assert right.recv(100) == b""  # our end was closed
    right.close()


SUBPROCESS_SERVER = """
import sys
sys.path.insert(0, {repo!r})
import rpyc_engine

class Remote(rpyc_engine.Service):
    def exposed_pid(self):
        import os
        return os.getpid()

    def exposed_call(self, func, value):
        print("stray output must not corrupt the stream")
        return func(value)

rpyc_engine.connect_stdpipes(Remote).serve_all()
"""


def test_subprocess_over_stdio_pipes():
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS_SERVER.format(repo=repo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        conn = rpyc_engine.connect_pipes(proc.stdout, proc.stdin)
        assert conn.root.pid() == proc.pid
        assert conn.root.call(lambda value: value * 2, 21) == 42
        conn.close()
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_threaded_handles_requests_in_parallel():
    left, right = socket.socketpair()
    server_side = connect_socket(left, CalcService)
    client = connect_socket(right)
    thread = threading.Thread(target=server_side.serve_threaded, args=(4,))
    thread.start()
    try:
        root = client.root
        # The first handler blocks until the second one runs, which needs a second
        # serving thread: served one at a time, it would time out and return False.
        waiting = async_(root.wait_event)(20)
        root.set_event()
        assert waiting.value is True
    finally:
        client.close()
        thread.join(20)
    assert not thread.is_alive()


def test_reply_behind_slow_request_not_stalled():
    """A reply read together with a slow request is dispatched by another thread."""
    from rpyc_engine.protocol import wire
    from rpyc_engine.protocol.framing import FrameDecoder, encode_frame
    from rpyc_engine.protocol.messages import (
        decode_message,
        encode_reply,
        encode_request,
    )

    release = threading.Event()

    class Blocking(Service):
        def exposed_block(self):
            return release.wait(20)

    ours, theirs = socket.socketpair()
    theirs.settimeout(10)
    conn = connect_socket(ours, Blocking)
    decoder = FrameDecoder()
    inbox = []

    def receive():
        while not inbox:
            inbox.extend(decoder.feed(theirs.recv(65536)))
        return decode_message(inbox.pop(0))

    ping_a = threading.Thread(target=conn.sync_request, args=(wire.HANDLE_PING, "a"))
    ping_a.start()
    try:
        assert receive()[:2] == (wire.MSG_REQUEST, 0)
        theirs.sendall(encode_frame(encode_request(0, wire.HANDLE_GETROOT, (1, ()))))
        msg_type, _, (label, root_id_pack) = receive()
        assert (msg_type, label) == (wire.MSG_REPLY, wire.LABEL_REMOTE_REF)
        result_b = conn.async_request(wire.HANDLE_PING, "b")
        assert receive()[:2] == (wire.MSG_REQUEST, 1)
        # One write: a request whose handler blocks, then the reply to "b".
        slow = encode_request(
            1,
            wire.HANDLE_CALLATTR,
            (2, ((3, root_id_pack), (1, "block"), (1, ()), (1, ()))),
        )
        theirs.sendall(encode_frame(slow) + encode_frame(encode_reply(1, (1, "b"))))
        result_b.wait(10)
        assert result_b.value == "b"
    finally:
        release.set()
    assert receive() == (wire.MSG_REPLY, 1, (1, True))
    theirs.sendall(encode_frame(encode_reply(0, (1, "a"))))
    ping_a.join(10)
    assert not ping_a.is_alive()
    conn.close()
    theirs.close()


def test_close_while_threads_call(server, conn):
    """Closing under concurrent callers: each call returns or raises ConnectionClosed."""
    root = conn.root
    add = root.add
    outcomes = []
    started = threading.Barrier(5)

    def worker():
        started.wait(10)
        try:
            for _ in range(1000):
                add(1, 2)
        except ConnectionClosed:
            outcomes.append("closed")
        except BaseException as exc:
            outcomes.append(exc)
        else:
            outcomes.append("finished")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait(10)
    conn.close()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(outcomes) == 4
    assert all(outcome in ("closed", "finished") for outcome in outcomes), outcomes


def test_large_reply_is_compressed():
    ours, theirs = socket.socketpair()
    conn = connect_socket(ours, CalcService)
    thread = threading.Thread(target=conn.serve_all)
    thread.start()
    try:
        from rpyc_engine.protocol import wire
        from rpyc_engine.protocol.framing import encode_frame
        from rpyc_engine.protocol.messages import encode_request

        request = encode_request(0, wire.HANDLE_PING, (1, ("x" * 5000,)))
        theirs.sendall(encode_frame(request, None))  # sent raw (uncompressed)
        theirs.settimeout(10)
        header = b""
        while len(header) < 5:
            header += theirs.recv(5 - len(header))
        length = int.from_bytes(header[:4], "big")
        assert header[4] == 1  # compressed
        assert length < 5000
    finally:
        theirs.close()
        thread.join(10)
    assert not thread.is_alive()


def test_before_closed_hook(server, make_client):
    seen = []
    conn = make_client(server.port, config={"before_closed": seen.append})
    root = conn.root
    conn.close()
    assert seen == [root]


def test_unix_socket_connection(tmp_path):
    from rpyc_engine.server import ThreadedServer

    path = str(tmp_path / "engine.sock")
    server = ThreadedServer(CalcService, socket_path=path)
    server.start_in_thread()
    try:
        conn = rpyc_engine.unix_connect(path)
        assert conn.root.add(2, 2) == 4
        conn.close()
    finally:
        server.close()


def test_keepalive_option(server):
    conn = rpyc_engine.connect("127.0.0.1", server.port, keepalive=30)
    try:
        sock = conn._driver.stream.sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        conn.close()


def test_failing_result_callback_does_not_stop_serving(conn, caplog):
    def broken(result):
        raise RuntimeError("broken callback")

    result = async_(conn.root.add)(1, 2)
    result.add_callback(broken)
    result.wait(10)
    assert result.value == 3
    assert conn.root.add(2, 2) == 4
    assert "callback" in caplog.text


def test_socket_wrapper_recv_is_used():
    """A socket wrapper's own recv() is used, so bytes it holds back are not lost."""
    from rpyc_engine.drivers.streams import SocketStream

    class PrefixSocket:
        def __init__(self, sock, prefix):
            self._sock = sock
            self._prefix = prefix

        def __getattr__(self, name):
            return getattr(self._sock, name)

        def recv(self, size):
            if self._prefix:
                data, self._prefix = self._prefix[:size], self._prefix[size:]
                return data
            return self._sock.recv(size)

    left, right = socket.socketpair()
    stream = SocketStream(PrefixSocket(left, b"early"))
    right.sendall(b" late")
    assert stream.read() == b"early"
    assert stream.read() == b" late"
    stream.close()
    right.close()


def test_threaded_server_with_callbacks_from_many_threads():
    """Both sides multi-threaded, with nested callbacks: every call completes."""
    left, right = socket.socketpair()
    server_side = connect_socket(left, CalcService)
    client = connect_socket(right)
    serving = threading.Thread(target=server_side.serve_threaded, args=(4,))
    serving.start()
    root = client.root
    errors = []
    results = []

    def worker(number):
        try:
            for index in range(30):
                value = root.call(lambda n=number, i=index: root.add(n, i))
                results.append(value == number + index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors
        assert len(results) == 180
        assert all(results)
    finally:
        client.close()
        serving.join(20)
    assert not serving.is_alive()


def test_serve_without_timeout_waits_for_a_request():
    left, right = socket.socketpair()
    server_side = connect_socket(left, CalcService)
    client = connect_socket(right)
    served = []
    thread = threading.Thread(target=lambda: served.append(server_side.serve(None)))
    thread.start()
    from rpyc_engine.protocol.wire import HANDLE_PING

    # Sent later than the driver's 1 s poll slice, so serve(None) must keep waiting.
    timer = threading.Timer(1.5, client.async_request, args=(HANDLE_PING, "x"))
    timer.start()
    thread.join(20)
    timer.join(10)
    assert served == [True]
    client.close()
    server_side.close()


def test_serve_with_zero_timeout_returns_at_once(conn):
    assert conn.serve(0) is False
