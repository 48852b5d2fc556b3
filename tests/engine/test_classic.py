"""Classic mode with this engine on both ends: thread, subprocess, TCP and Unix."""

from __future__ import annotations

import io
import os
import stat
import sys

import pytest

from rpyc_engine import classic
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.classic import CLASSIC_CONFIG, SlaveService
from rpyc_engine.teleport import TeleportError

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_pid(x):
    import os

    return os.getpid() + x


@pytest.fixture
def server():
    srv = ThreadedServer(SlaveService, hostname="127.0.0.1", port=0)
    srv.start_in_thread()
    yield srv
    srv.close()


@pytest.fixture
def conn(server):
    connection = classic.connect("127.0.0.1", server.port)
    yield connection
    connection.close()


def test_modules_eval_execute_namespace(conn):
    assert conn.modules.os.getpid() == os.getpid()
    assert conn.modules["os.path"].basename("/a/b") == "b"
    assert conn.eval("1 + 2") == 3
    conn.execute("value = 21")
    assert conn.eval("value * 2") == 42
    assert conn.namespace["value"] == 21
    assert conn.builtins is conn.builtin
    assert conn.builtins.max(3, 9) == 9


def test_function_forms(conn):
    classic.execute(conn, "z = 3")
    assert classic.eval(conn, "z") == 3
    assert classic.namespace(conn)["z"] == 3
    assert classic.modules(conn).sys.platform == sys.platform


def test_module_namespace_errors(conn):
    with pytest.raises(AttributeError, match="no_such_module_rpyc_engine"):
        conn.modules.no_such_module_rpyc_engine  # noqa: B018
    with pytest.raises(ImportError):
        conn.modules["no_such_module_rpyc_engine"]
    assert "json" in conn.modules
    assert "no_such_module_rpyc_engine" not in conn.modules


def test_root_relaxes_its_config(conn):
    server_conn = conn.root.getconn()
    for key, value in CLASSIC_CONFIG.items():
        assert server_conn.config[key] == value


def test_root_attributes_cannot_be_set(conn):
    with pytest.raises(AttributeError):
        conn.root.namespace = {}


def test_namespace_private_per_connection(server, conn):
    conn.execute("owner = 'first'")
    other = classic.connect("127.0.0.1", server.port)
    try:
        assert other.eval("'owner' in dir()") is False
    finally:
        other.close()


def test_remote_exception_is_builtin_class(conn):
    with pytest.raises(ZeroDivisionError):
        conn.eval("1 / 0")


def test_teleport_uses_our_importer(conn):
    remote = conn.teleport(add_pid)
    assert remote(1) == os.getpid() + 1
    assert conn.eval("add_pid(2)") == os.getpid() + 2


def test_teleport_with_def_false(conn):
    remote = classic.teleport_function(conn, add_pid, def_=False)
    assert remote(0) == os.getpid()
    assert "add_pid" not in conn.namespace


def test_obtain_and_deliver(conn):
    remote = conn.eval("{'k': [1, 2, 3]}")
    local = classic.obtain(remote)
    assert local == {"k": [1, 2, 3]}
    assert type(local) is dict
    delivered = classic.deliver(conn, [1, (2, 3)])
    assert conn.builtins.len(delivered) == 2


def test_redirected_stdio(conn, monkeypatch):
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stdout", captured)
    with classic.redirected_stdio(conn):
        conn.execute("print('from the peer')")
    assert captured.getvalue() == "from the peer\n"
    assert conn.modules.sys.stdout is not captured


def test_upload_missing_local_path(conn, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a file or directory"):
        classic.upload(conn, str(tmp_path / "nope"), str(tmp_path / "dest"))


def test_download_missing_remote_path(conn, tmp_path):
    target = tmp_path / "dest"
    with pytest.raises(FileNotFoundError, match="not a file or directory on the peer"):
        classic.download(conn, str(tmp_path / "nope"), str(target))
    assert not target.exists()


def test_failed_download_leaves_no_file(conn, tmp_path):
    # Reading /proc/self/mem at offset 0 fails with EIO on Linux: a real mid-transfer
    # error on the serving side after the file was opened.
    target = tmp_path / "mem.bin"
    with pytest.raises(OSError):
        classic.download(conn, "/proc/self/mem", str(target))
    assert os.listdir(tmp_path) == []


def test_failed_upload_leaves_no_file(conn, tmp_path):
    target = tmp_path / "mem.bin"
    with pytest.raises(OSError):
        classic.upload(conn, "/proc/self/mem", str(target))
    assert os.listdir(tmp_path) == []


def test_upload_replaces_existing_file(conn, tmp_path):
    source = tmp_path / "new.txt"
    source.write_bytes(b"new contents")
    target = tmp_path / "old.txt"
    target.write_bytes(b"old")
    classic.upload(conn, str(source), str(target), chunk_size=4)
    assert target.read_bytes() == b"new contents"


def test_transfer_keeps_permission_bits(conn, tmp_path):
    source = tmp_path / "script.sh"
    source.write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(source, 0o750)
    uploaded = tmp_path / "uploaded.sh"
    classic.upload(conn, str(source), str(uploaded))
    assert stat.S_IMODE(os.stat(uploaded).st_mode) == 0o750
    os.chmod(uploaded, 0o604)
    downloaded = tmp_path / "downloaded.sh"
    classic.download(conn, str(uploaded), str(downloaded))
    assert stat.S_IMODE(os.stat(downloaded).st_mode) == 0o604
    assert downloaded.read_bytes() == source.read_bytes()


def test_connect_thread():
    conn = classic.connect_thread()
    try:
        assert conn.modules.os.getpid() == os.getpid()
        conn.execute("import threading; name = threading.current_thread().name")
        assert conn.eval("name") != "MainThread"
    finally:
        conn.close()


def test_unix_connect(tmp_path):
    path = str(tmp_path / "classic.sock")
    srv = ThreadedServer(SlaveService, socket_path=path)
    srv.start_in_thread()
    try:
        conn = classic.unix_connect(path)
        try:
            assert conn.eval("40 + 2") == 42
        finally:
            conn.close()
    finally:
        srv.close()


def test_connect_subproc_child_exits_on_close():
    conn = classic.connect_subproc()
    proc = conn.proc
    try:
        assert conn.modules.os.getpid() == proc.pid
        conn.execute("print('stdout noise must not reach the channel')")
        conn.execute("import os; os.write(1, b'raw fd 1 noise')")
        assert conn.eval("6 * 7") == 42
    finally:
        conn.close()
    assert proc.wait(timeout=20) == 0


def test_connect_subproc_child_exits_when_parent_hangs_up():
    conn = classic.connect_subproc()
    proc = conn.proc
    assert conn.eval("1") == 1
    proc.stdin.close()  # as if this process died: the child sees end of input
    assert proc.wait(timeout=20) == 0
    conn.close()


def test_connect_subproc_failing_child_reported():
    argv = [sys.executable, "-c", "import sys; sys.exit(7)"]
    with pytest.raises(EOFError, match="exited with status 7"):
        classic.connect_subproc(server_argv=argv)


def _other_interpreter():
    pyenv = os.path.expanduser("~/.pyenv/versions")
    mine = sys.version_info[:2]
    if not os.path.isdir(pyenv):
        return None
    for name in sorted(os.listdir(pyenv), reverse=True):
        parts = name.split(".")
        if len(parts) < 2 or parts[0] != "3" or not parts[1].isdigit():
            continue
        version = (3, int(parts[1]))
        exe = os.path.join(pyenv, name, "bin", "python3")
        if version >= (3, 8) and version != mine and os.access(exe, os.X_OK):
            return exe
    return None


@pytest.mark.skipif(
    _other_interpreter() is None, reason="no second CPython version installed"
)
def test_teleport_to_other_version_refused():
    argv = [_other_interpreter(), "-m", "rpyc_engine", "serve", "--classic", "--stdio"]
    conn = classic.connect_subproc(server_argv=argv)
    try:
        peer = tuple(conn.modules.sys.version_info[:2])
        assert peer != sys.version_info[:2]
        with pytest.raises(TeleportError) as info:
            conn.teleport(add_pid)
        message = str(info.value)
        assert "CPython {}.{}".format(*sys.version_info[:2]) in message
        assert "CPython {}.{}".format(*peer) in message
        conn.execute("def add_pid(x):\n    import os\n    return os.getpid() + x")
        assert conn.eval("add_pid(0)") == conn.proc.pid
    finally:
        conn.close()
    conn.proc.wait(timeout=20)


def test_ssl_connect_classic(tmp_path):
    trustme = pytest.importorskip("trustme")
    from rpyc_engine.tls import SSLAuthenticator

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    cert_file = tmp_path / "server.pem"
    key_file = tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    authenticator = SSLAuthenticator(str(key_file), str(cert_file))
    srv = ThreadedServer(
        SlaveService, hostname="127.0.0.1", port=0, authenticator=authenticator
    )
    srv.start_in_thread()
    try:
        conn = classic.ssl_connect("127.0.0.1", srv.port, ca_certs=str(ca_file))
        try:
            assert conn.modules.os.getpid() == os.getpid()
            assert conn.eval("2 + 2") == 4
        finally:
            conn.close()
    finally:
        srv.close()
