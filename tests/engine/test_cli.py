"""``python -m rpyc_engine serve`` as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from rpyc_engine.factory import connect, connect_pipes, unix_connect

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [REPO_ROOT, env.get("PYTHONPATH")])
    )
    return env


@pytest.fixture
def spawn():
    procs = []

    def start(*args):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rpyc_engine", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_port_zero_prints_port_first(spawn):
    proc = spawn("--port", "0")
    line = proc.stdout.readline()
    port = int(line)
    assert 0 < port < 65536
    conn = connect("127.0.0.1", port)
    try:
        conn.ping()
        assert isinstance(conn.root.get_service_name(), str)
    finally:
        conn.close()


def test_sigterm_exits_zero(spawn):
    proc = spawn("--port", "0")
    int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_sigint_exits_zero(spawn):
    proc = spawn("--port", "0", "--threadpool")
    int(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def test_sigterm_with_client_connected(spawn):
    proc = spawn("--classic", "--port", "0")
    port = int(proc.stdout.readline())
    conn = connect("127.0.0.1", port)
    try:
        assert conn.root.eval("6 * 7") == 42
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        conn.close()


def test_classic_on_wildcard_refused_before_binding(spawn):
    # Only the refusal is checked: the process must exit before it binds anything.
    proc = spawn("--classic", "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out == ""
    assert "refusing to serve classic mode on '0.0.0.0'" in err
    assert "--i-understand-classic-is-full-access" in err


def test_classic_on_hostname_refused(spawn):
    proc = spawn("--classic", "--host", "example.invalid", "--port", "0")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "not a loopback address" in err


def test_invalid_port_rejected(spawn):
    proc = spawn("--port", "70000")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "invalid --port 70000" in err


def test_unix_prints_path(spawn, tmp_path):
    path = str(tmp_path / "cli.sock")
    proc = spawn("--classic", "--unix", path)
    assert proc.stdout.readline().strip() == path
    conn = unix_connect(path)
    try:
        assert conn.root.eval("1 + 1") == 2
    finally:
        conn.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not os.path.exists(path)


def test_busy_port_fails_with_message(spawn):
    first = spawn("--port", "0")
    port = first.stdout.readline().strip()
    second = spawn("--port", port)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_missing_service_class_reported(spawn):
    proc = spawn("--service", "rpyc_engine.services.base:NoSuchService", "--port", "0")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "cannot load --service 'rpyc_engine.services.base:NoSuchService'" in err


def test_service_option_serves_that_class(spawn):
    proc = spawn("--service", "rpyc_engine.services.base:VoidService", "--port", "0")
    port = int(proc.stdout.readline())
    conn = connect("127.0.0.1", port)
    try:
        assert conn.root.get_service_name() == "VOID"
    finally:
        conn.close()


def test_bad_service_spec_rejected(spawn):
    proc = spawn("--service", "no_colon_here", "--port", "0")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "expected MODULE:CLASS" in err


def test_stdio_serves_plain_service():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpyc_engine", "serve", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_env(),
    )
    try:
        conn = connect_pipes(proc.stdout, proc.stdin)
        conn.ping()
        with pytest.raises(AttributeError):
            conn.root.eval  # noqa: B018 - a plain service exposes no eval
        conn.close()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
