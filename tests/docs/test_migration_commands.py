"""The commands shown in docs/migrating-from-rpyc.md behave as the page describes.

Each test runs the page's command line in a child process on 127.0.0.1 and connects
with the client the page names: stock rpyc 6.0.2 against our server, and ours against
stock's `rpyc_classic`.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rpyc_engine

rpyc = pytest.importorskip("rpyc", reason="stock rpyc is a test-only peer")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

CALC_SERVICE = textwrap.dedent(
    """
    import rpyc_engine


    class CalculatorService(rpyc_engine.Service):
        def exposed_add(self, a, b):
            return a + b

        @rpyc_engine.exposed
        def multiply(self, a, b):
            return a * b

        def secret(self):
            return "not reachable"
    """
)


def read_line(process: subprocess.Popen, stream_name: str) -> str:
    """Return the next line of the child's stdout or stderr, within START_TIMEOUT."""
    stream = getattr(process, stream_name)
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(stream.readline()), daemon=True
    )
    reader.start()
    reader.join(START_TIMEOUT)
    if not result or not result[0]:
        raise AssertionError(
            f"no line on {stream_name} within {START_TIMEOUT} s; exit status "
            f"{process.poll()}"
        )
    return result[0]


def stop(process: subprocess.Popen) -> int:
    """Send SIGTERM and return the exit status; kill the child if it does not exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
        raise


@pytest.fixture
def engine_server(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[subprocess.Popen, int]]]:
    """Yield a function that starts `python -m rpyc_engine serve ARGS` in tmp_path.

    The function returns the process and the port it printed; every process still
    running at the end of the test is killed.
    """
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, int]:
        process = subprocess.Popen(
            [sys.executable, "-m", "rpyc_engine", "serve", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        return process, int(read_line(process, "stdout"))

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)


def test_stock_classic_client_on_engine_server(engine_server) -> None:
    process, port = engine_server("--classic", "--port", "0")
    conn = rpyc.classic.connect("127.0.0.1", port)
    try:
        assert tuple(conn.modules.sys.version_info[:2]) == sys.version_info[:2]
        assert conn.eval("6*7") == 42
        conn.execute("x = 5")
        assert conn.namespace["x"] == 5
    finally:
        conn.close()
    assert stop(process) == 0


def test_stock_client_on_engine_service(engine_server, tmp_path: Path) -> None:
    (tmp_path / "calc_service.py").write_text(CALC_SERVICE)
    process, port = engine_server(
        "--service", "calc_service:CalculatorService", "--port", "0"
    )
    conn = rpyc.connect("127.0.0.1", port)
    try:
        assert conn.root.add(2, 3) == 5
        assert conn.root.multiply(4, 5) == 20
        with pytest.raises(AttributeError, match="cannot access 'secret'"):
            conn.root.secret()
    finally:
        conn.close()
    assert stop(process) == 0


def test_engine_client_on_stock_classic_server() -> None:
    rpyc_classic = Path(sys.executable).parent / "rpyc_classic"
    if not rpyc_classic.exists():
        pytest.skip(f"stock rpyc's rpyc_classic script is not at {rpyc_classic}")
    process = subprocess.Popen(
        [str(rpyc_classic), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, "stderr")
        found = re.search(r"server started on \[127\.0\.0\.1\]:(\d+)", line)
        assert found, f"unexpected first log line of rpyc_classic: {line!r}"
        conn = rpyc_engine.classic.connect("127.0.0.1", int(found.group(1)))
        try:
            assert conn.eval("6*7") == 42
            assert tuple(conn.modules.sys.version_info[:2]) == sys.version_info[:2]
        finally:
            conn.close()
    finally:
        process.kill()
        process.wait(STOP_TIMEOUT)
