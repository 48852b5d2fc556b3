"""Classic mode against stock rpyc 6.0.2, in both directions, over loopback TCP.

Stock rpyc is a test-only peer here: it runs as the client against our
``serve --classic`` subprocess, and as the server (``rpyc.SlaveService`` on a
``ThreadedServer``) in a subprocess for our classic client.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

rpyc = pytest.importorskip("rpyc")
from rpyc.core import consts  # noqa: E402

from rpyc_engine import classic  # noqa: E402
from rpyc_engine.protocol import wire  # noqa: E402
from rpyc_engine.protocol.framing import encode_frame, read_frame  # noqa: E402
from rpyc_engine.protocol.messages import decode_message, encode_request  # noqa: E402
from rpyc_engine.teleport import TeleportError  # noqa: E402

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STOCK_SERVER = textwrap.dedent(
    """
    import rpyc
    from rpyc.utils.server import ThreadedServer
    server = ThreadedServer(rpyc.SlaveService, hostname="127.0.0.1", port=0)
    server._listen()  # stock binds in __init__ but listens only in start()
    print(server.port, flush=True)
    server.start()
    """
)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [REPO_ROOT, env.get("PYTHONPATH")])
    )
    return env


def _start(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=_env(), text=True)
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait(10)
        pytest.fail(f"server did not print its port: {line!r}")
    return proc, int(line)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    proc.stdout.close()


@pytest.fixture(scope="module")
def our_server():
    proc, port = _start(
        [sys.executable, "-m", "rpyc_engine", "serve", "--classic", "--port", "0"]
    )
    yield proc, port
    _stop(proc)


@pytest.fixture(scope="module")
def our_server_without_rpyc():
    # -S leaves site-packages off sys.path, so the server cannot import stock rpyc and
    # must serve its own stand-ins for the rpyc modules stock clients ask for.
    argv = [
        sys.executable,
        "-S",
        "-m",
        "rpyc_engine",
        "serve",
        "--classic",
        "--port",
        "0",
    ]
    proc, port = _start(argv)
    yield proc, port
    _stop(proc)


@pytest.fixture(scope="module")
def stock_server():
    proc, port = _start([sys.executable, "-c", STOCK_SERVER])
    yield proc, port
    _stop(proc)


@pytest.fixture
def stock_client(our_server):
    conn = rpyc.classic.connect("127.0.0.1", our_server[1])
    yield conn
    conn.close()


@pytest.fixture
def our_client(stock_server):
    conn = classic.connect("127.0.0.1", stock_server[1])
    yield conn
    conn.close()


def _make_tree(root):
    os.makedirs(os.path.join(root, "sub", "deeper"))
    files = {
        "a.txt": b"alpha\n",
        "empty.bin": b"",
        os.path.join("sub", "b.bin"): os.urandom(3 * 1024 * 1024 + 17),
        os.path.join("sub", "deeper", "c.txt"): b"gamma" * 1000,
    }
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as handle:
            handle.write(data)
    return files


def _read_tree(root):
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found


def scaled_pid(factor, offset=1):
    import os

    return os.getpid() * factor + offset


# -- stock classic client -> our classic server -------------------------------------


def test_stock_client_basic_operations(stock_client, our_server):
    conn = stock_client
    assert conn.modules.os.getpid() == our_server[0].pid
    assert conn.eval("2 ** 10") == 1024
    conn.execute("shared = [1, 2, 3]")
    assert conn.eval("sum(shared)") == 6
    conn.namespace["x"] = 5
    assert conn.eval("x * 2") == 10
    assert conn.modules["os.path"].join("a", "b") == "a/b"
    assert conn.builtins.len([1, 2]) == 2


def test_stock_client_inspects_our_root(stock_client):
    root = stock_client.root
    methods = dict(stock_client.sync_request(consts.HANDLE_INSPECT, root.____id_pack__))
    for name in ("execute", "eval", "getmodule", "getconn"):
        assert name in methods
    assert root.getmodule("sys").platform == sys.platform
    assert root.getmodule(("os", "path")).sep == "/"


def test_stock_client_root_access_rules(stock_client):
    root = stock_client.root
    assert root.getmodule(("sys",)).platform == sys.platform
    with pytest.raises(AttributeError, match="access denied"):
        root.namespace = {}
    server_conn = root._conn
    assert server_conn.closed is False
    assert "json" in stock_client.modules
    assert "no_such_module_rpyc_engine" not in stock_client.modules


def test_stock_client_sees_remote_exceptions(stock_client):
    with pytest.raises(ZeroDivisionError) as info:
        stock_client.eval("1/0")
    assert "Traceback" in str(info.value)


def test_stock_client_setattr_on_module(stock_client):
    sys_proxy = stock_client.modules.sys
    sys_proxy.rpyc_engine_marker = 7
    assert stock_client.eval("__import__('sys').rpyc_engine_marker") == 7
    del sys_proxy.rpyc_engine_marker


def test_stock_client_teleport(stock_client, our_server):
    remote = stock_client.teleport(scaled_pid)
    assert remote(2) == our_server[0].pid * 2 + 1
    assert stock_client.eval("scaled_pid(1, 0)") == our_server[0].pid


def test_stock_client_obtain_and_deliver(stock_client):
    remote_list = stock_client.eval("[1, {'a': 2}]")
    assert rpyc.classic.obtain(remote_list) == [1, {"a": 2}]
    delivered = rpyc.classic.deliver(stock_client, {"k": (1, 2)})
    assert delivered["k"] == (1, 2)


def test_stock_client_redirected_stdio(stock_client, capsys):
    with rpyc.classic.redirected_stdio(stock_client):
        stock_client.execute("print('printed by the peer')")
    assert capsys.readouterr().out == "printed by the peer\n"


def test_stock_client_upload_download(stock_client, tmp_path):
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(200_000))
    rpyc.classic.upload(stock_client, str(source), str(tmp_path / "remote.bin"))
    rpyc.classic.download(
        stock_client, str(tmp_path / "remote.bin"), str(tmp_path / "back.bin")
    )
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def test_stock_client_teleport_without_rpyc_installed(our_server_without_rpyc):
    proc, port = our_server_without_rpyc
    conn = rpyc.classic.connect("127.0.0.1", port)
    try:
        assert conn.eval("'rpyc' in __import__('sys').modules") is False
        remote = conn.teleport(scaled_pid)
        assert remote(3, offset=0) == proc.pid * 3
        delivered = rpyc.classic.deliver(conn, [4, 5])
        assert list(delivered) == [4, 5]
        assert conn.eval("'rpyc' in __import__('sys').modules") is False
    finally:
        conn.close()


# -- our classic client -> stock classic server -------------------------------------


def test_our_client_basic_operations(our_client, stock_server):
    conn = our_client
    assert conn.modules.os.getpid() == stock_server[0].pid
    assert conn.eval("3 * 7") == 21
    conn.execute("from_us = 'hello'")
    assert conn.eval("from_us.upper()") == "HELLO"
    conn.namespace["y"] = 4
    assert conn.eval("y + 1") == 5
    assert "json" in conn.modules
    assert "no_such_module_rpyc_engine" not in conn.modules


def test_our_client_teleport_uses_stock_importer(our_client, stock_server):
    remote = classic.teleport_function(our_client, scaled_pid)
    assert remote(2, offset=0) == stock_server[0].pid * 2
    assert our_client.eval("scaled_pid(1, 1)") == stock_server[0].pid + 1
    assert (
        our_client.eval("'rpyc_engine.teleport' in __import__('sys').modules") is False
    )


def test_our_client_teleport_rejects_closure(our_client):
    offset = 3

    def closure(x):
        return x + offset

    with pytest.raises(TypeError, match="closure"):
        classic.teleport_function(our_client, closure)


def test_our_client_obtain_and_deliver(our_client):
    remote_dict = our_client.eval("{'a': [1, 2], 'b': None}")
    assert classic.obtain(remote_dict) == {"a": [1, 2], "b": None}
    delivered = classic.deliver(our_client, {"n": [7, 8]})
    assert our_client.builtins.len(delivered["n"]) == 2


def test_our_client_upload_download_big_file(our_client, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    remote = str(tmp_path / "remote" / "big.bin")
    os.makedirs(os.path.dirname(remote))
    classic.upload(our_client, str(source), remote)
    with open(remote, "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
    back = tmp_path / "back.bin"
    classic.download(our_client, remote, str(back))
    assert back.read_bytes() == data
    leftovers = [n for n in os.listdir(tmp_path / "remote") if n.endswith(".part")]
    assert leftovers == []


def test_our_client_upload_download_directory(our_client, tmp_path):
    source = tmp_path / "tree"
    files = _make_tree(str(source))
    remote = tmp_path / "remote-tree"
    classic.upload(our_client, str(source), str(remote))
    assert _read_tree(str(remote)) == files
    back = tmp_path / "back-tree"
    classic.download(our_client, str(remote), str(back))
    assert _read_tree(str(back)) == files


def test_our_client_failed_upload_leaves_no_file(our_client, tmp_path):
    target = tmp_path / "missing-dir" / "file.bin"
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 10)
    with pytest.raises(FileNotFoundError):
        classic.upload(our_client, str(source), str(target))
    assert not target.exists()


def test_our_client_teleport_version_check(our_client, monkeypatch):
    # Only one side can be faked in one process: pretend this side runs another minor
    # version, and the client must refuse before sending anything.
    monkeypatch.setattr(classic, "local_python_version", lambda: (3, 1))
    with pytest.raises(TeleportError) as info:
        classic.teleport_function(our_client, scaled_pid)
    mine = "{}.{}".format(*sys.version_info[:2])
    assert "CPython 3.1 " in str(info.value)
    assert f"CPython {mine}" in str(info.value)


# -- the classic root on the wire, byte level ---------------------------------------


class RawClient:
    """A hand-written RPyC 6 client: frames requests and reads replies by seq."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.seq = 0

    def request(self, handler, boxed_args):
        seq = self.seq
        self.seq += 1
        self.sock.sendall(encode_frame(encode_request(seq, handler, boxed_args)))
        while True:
            payload = read_frame(self._read_exact)
            msg_type, reply_seq, body = decode_message(payload)
            if reply_seq == seq and msg_type != wire.MSG_REQUEST:
                return msg_type, body

    def _read_exact(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError("server hung up")
            data += chunk
        return data

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(our_server):
    client = RawClient(our_server[1])
    yield client
    client.close()


def test_raw_getroot_bytes(raw):
    raw.sock.sendall(bytes.fromhex("000000080001115011531151020a"))
    msg_type, seq, body = decode_message(read_frame(raw._read_exact))
    raw.seq = 1
    assert (msg_type, seq) == (wire.MSG_REPLY, 0)
    label, id_pack = body
    assert label == wire.LABEL_REMOTE_REF
    assert id_pack[0] == "rpyc_engine.services.classic.SlaveService"
    assert id_pack[2] != 0


def test_raw_classic_root_requests(raw):
    msg_type, (label, root) = raw.request(wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ()))
    assert msg_type == wire.MSG_REPLY

    _, (_, methods) = raw.request(wire.HANDLE_INSPECT, (wire.LABEL_VALUE, (root,)))
    names = [name for name, _ in methods]
    for name in ("execute", "eval", "getmodule", "getconn"):
        assert name in names

    local_root = (wire.LABEL_LOCAL_REF, root)
    msg_type, (label, method) = raw.request(
        wire.HANDLE_GETATTR,
        (wire.LABEL_TUPLE, (local_root, (wire.LABEL_VALUE, "getmodule"))),
    )
    assert (msg_type, label, method[0]) == (
        wire.MSG_REPLY,
        wire.LABEL_REMOTE_REF,
        "builtins.method",
    )

    call_args = (
        (wire.LABEL_LOCAL_REF, method),
        (wire.LABEL_VALUE, (("sys",),)),
        (wire.LABEL_VALUE, ()),
    )
    msg_type, (label, module) = raw.request(
        wire.HANDLE_CALL, (wire.LABEL_TUPLE, call_args)
    )
    assert (label, module[0]) == (wire.LABEL_REMOTE_REF, "sys")

    getattr_args = ((wire.LABEL_LOCAL_REF, module), (wire.LABEL_VALUE, "platform"))
    msg_type, reply = raw.request(wire.HANDLE_GETATTR, (wire.LABEL_TUPLE, getattr_args))
    assert reply == (wire.LABEL_VALUE, sys.platform)

    setattr_args = (local_root, (wire.LABEL_VALUE, "x"), (wire.LABEL_VALUE, 1))
    msg_type, body = raw.request(wire.HANDLE_SETATTR, (wire.LABEL_TUPLE, setattr_args))
    assert msg_type == wire.MSG_EXCEPTION
    assert body[0] == ("builtins", "AttributeError")
    assert body[1] == ("access denied",)


def test_raw_eval_exception_has_traceback(raw):
    _, (_, root) = raw.request(wire.HANDLE_GETROOT, (wire.LABEL_VALUE, ()))
    args = (
        (wire.LABEL_LOCAL_REF, root),
        (wire.LABEL_VALUE, "eval"),
        (wire.LABEL_VALUE, ("1/0",)),
        (wire.LABEL_VALUE, ()),
    )
    msg_type, body = raw.request(wire.HANDLE_CALLATTR, (wire.LABEL_TUPLE, args))
    assert msg_type == wire.MSG_EXCEPTION
    assert body[0] == ("builtins", "ZeroDivisionError")
    assert "Traceback" in body[3]
