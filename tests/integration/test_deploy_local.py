"""DeployedServer on plumbum's ``local`` (the app's "This computer" target)."""

from __future__ import annotations

import os
import signal

import pytest
from deploy_checks import inet_sockets_of, process_gone, reachable_unix_sockets_of
from plumbum import local

from rpyc_engine.deploy import (
    DeployedServer,
    DeployError,
    NoPythonError,
    TimeoutExpired,
)

pytestmark = pytest.mark.timeout(60)


def test_first_call_runs_in_child():
    """The local server is a separate process of the same user."""
    with DeployedServer(local) as server:
        conn = server.classic_connect()
        assert conn.modules.os.getpid() == server.remote_pid
        assert server.remote_pid != os.getpid()
        assert server.local_pid == server.remote_pid
        assert conn.modules.os.getuid() == os.getuid()


def test_no_listener_and_gone_after_close():
    """The local server opens no reachable socket and is reaped by close()."""
    server = DeployedServer(local)
    pid = server.remote_pid
    try:
        server.classic_connect().modules.os.getpid()
        assert inet_sockets_of(pid) == []
        assert reachable_unix_sockets_of(pid) == []
    finally:
        leftovers = server.close()
    assert leftovers == ()
    assert not os.path.exists(f"/proc/{pid}")


def test_two_connects_work():
    """Two connections on one local deployment both reply."""
    with DeployedServer(local) as server:
        first = server.classic_connect()
        second = server.connect()
        second.ping()
        assert first.modules.os.getpid() == server.remote_pid


def test_dotted_service_name():
    """A service given by dotted name is imported from the bundle on the server."""
    with DeployedServer(
        local, service="rpyc_engine.services.base.VoidService"
    ) as server:
        conn = server.connect()
        conn.ping()
        assert server.service == "rpyc_engine.services.base.VoidService"


def test_close_timeout_kills_frozen_child():
    """A stopped local server makes close(timeout) raise; the child is killed anyway."""
    server = DeployedServer(local)
    pid = server.remote_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutExpired) as raised:
            server.close(timeout=0.5)
        assert raised.value.leftovers == ()
        assert process_gone(pid, within=1)
    finally:
        if not process_gone(pid, within=0):
            os.kill(pid, signal.SIGKILL)


def test_engine_imported_from_memory():
    """The server imports the uploaded engine from memory, and its source is readable."""
    with DeployedServer(local) as server:
        conn = server.classic_connect()
        remote_engine = conn.modules.rpyc_engine
        assert remote_engine.__file__ == "<rpyc-deploy>/rpyc_engine/__init__.py"
        remote_main = conn.modules["rpyc_engine.deploy.remote"].main
        assert "def main(" in conn.modules.inspect.getsource(remote_main)


def test_plumbum_command_as_interpreter():
    """A plumbum command given as the interpreter is used by its executable path."""
    with DeployedServer(local, python_executable=local["/usr/bin/python3"]) as server:
        assert server.python_override == "/usr/bin/python3"
        assert server.classic_connect().modules.sys.executable == "/usr/bin/python3"


PYENV_VERSIONS = "/root/.pyenv/versions"


def _pyenv_python(prefix: str) -> str:
    """Return a pyenv interpreter whose version starts with ``prefix``, or skip."""
    try:
        names = sorted(os.listdir(PYENV_VERSIONS))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(PYENV_VERSIONS, name, "bin", "python")
        if name.startswith(prefix + ".") and os.access(path, os.X_OK):
            return path
    pytest.skip(f"no Python {prefix} under {PYENV_VERSIONS} on this machine")


@pytest.mark.parametrize("version", ["3.8", "3.9", "3.10", "3.12", "3.13"])
def test_server_runs_on_python(version):
    """The server part runs on every supported interpreter found on this machine."""
    python = _pyenv_python(version)
    with DeployedServer(local, python_executable=python) as server:
        conn = server.classic_connect()
        assert conn.modules.sys.version.startswith(version + ".")
        assert server.python_version[:2] == tuple(int(x) for x in version.split("."))
        assert conn.eval("sum(range(10))") == 45


@pytest.mark.parametrize("version", ["2.7", "3.6", "3.7"])
def test_old_python_is_rejected(version):
    """An interpreter older than 3.8 gives NoPythonError naming its version."""
    python = _pyenv_python(version)
    with pytest.raises(NoPythonError) as raised:
        DeployedServer(local, python_executable=python)
    assert f"(Python {version}." in str(raised.value)


def test_open_socket_serves_asyncio_client():
    """A raw channel socket carries an asyncio connection from rpyc_engine.aio."""
    import asyncio

    from rpyc_engine import aio
    from rpyc_engine.services.classic import ClassicService

    async def remote_pid(server: DeployedServer) -> int:
        reader, writer = await asyncio.open_connection(sock=server.open_socket())
        conn = await aio.connect_stream(reader, writer, service=ClassicService)
        try:
            root = await aio.root(conn)
            remote_os = await aio.callattr(root, "getmodule", "os")
            return await aio.callattr(remote_os, "getpid")
        finally:
            await aio.close(conn)

    with DeployedServer(local) as server:
        assert asyncio.run(remote_pid(server)) == server.remote_pid


def test_connect_after_close_fails():
    """connect() on a closed deployment raises DeployError in phase 'closing'."""
    server = DeployedServer(local)
    server.close()
    with pytest.raises(DeployError) as raised:
        server.connect()
    assert raised.value.phase == "closing"
    assert "the deployment is closed" in str(raised.value)
