"""Transfers cut off by a killed server or a dropped connection leave no target file.

Covers the engine's classic upload/download and the app's transfer queue.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

# Qt runs offscreen unless the caller chose a platform (before any Qt import).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from fault_helpers import process_gone, start_server_process, stop_process, wait_until

from rpyc_engine import ConnectionClosed, classic, connect
from rpyc_engine.services.classic import ClassicService

pytestmark = pytest.mark.timeout(120)

# Large enough that a transfer over loopback is still running when the fault hits.
FILE_SIZE = 48 * 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def classic_server():
    process, port = start_server_process("rpyc_engine.services.classic.ClassicService")
    yield process, port
    stop_process(process)


@pytest.fixture
def source_file(tmp_path) -> Path:
    path = tmp_path / "source.bin"
    with open(path, "wb") as handle:
        handle.truncate(FILE_SIZE)
        handle.write(os.urandom(CHUNK))
    return path


def _when_partial(directory: Path, action) -> threading.Thread:
    """Run ``action`` on a thread once ``directory`` has a non-empty ``.part`` file."""

    def written() -> bool:
        return any(
            p.name.endswith(".part") and p.stat().st_size > 0
            for p in list(directory.iterdir())
        )

    def watch() -> None:
        if wait_until(written, 30):
            action()

    thread = threading.Thread(target=watch, name="fault trigger")
    thread.start()
    return thread


def test_classic_upload_server_killed(
    classic_server, source_file, tmp_path, thread_watch
):
    """kill -9 of the server during upload(): ConnectionClosed and no target file."""
    process, port = classic_server
    target_dir = tmp_path / "remote"
    target_dir.mkdir()
    target = target_dir / "copy.bin"
    conn = connect("127.0.0.1", port, service=ClassicService)
    trigger = _when_partial(target_dir, lambda: os.kill(process.pid, signal.SIGKILL))
    try:
        with pytest.raises(ConnectionClosed):
            classic.upload(conn, str(source_file), str(target), chunk_size=CHUNK)
    finally:
        trigger.join(30)
        conn.close()
    assert process_gone(process.pid, within=5)
    assert not target.exists()
    # NOTE: the killed server cannot remove its hidden .part file; only the target
    # name is guaranteed to stay free. A later upload to the same target is unaffected.
    assert [name for name in os.listdir(target_dir) if not name.endswith(".part")] == []


def test_classic_upload_connection_cut(
    classic_server, source_file, tmp_path, thread_watch
):
    """A connection cut during upload(): the client raises, the target never appears."""
    _, port = classic_server
    target_dir = tmp_path / "remote"
    target_dir.mkdir()
    target = target_dir / "copy.bin"
    conn = connect("127.0.0.1", port, service=ClassicService)
    sock = conn._driver.stream.sock
    trigger = _when_partial(target_dir, lambda: sock.shutdown(socket.SHUT_RDWR))
    try:
        with pytest.raises(ConnectionClosed):
            classic.upload(conn, str(source_file), str(target), chunk_size=CHUNK)
    finally:
        trigger.join(30)
        conn.close()
    assert not target.exists()
    # NOTE: classic upload() removes its .part file through the connection, so a cut
    # connection leaves it on the server; the target name stays free.
    leftovers = os.listdir(target_dir)
    assert all(name.startswith(".copy.bin.") for name in leftovers)
    assert all(name.endswith(".part") for name in leftovers)
    with connect("127.0.0.1", port, service=ClassicService) as fresh:
        classic.upload(fresh, str(source_file), str(target), chunk_size=1024 * 1024)
    assert target.stat().st_size == FILE_SIZE


def test_classic_download_server_killed(
    classic_server, source_file, tmp_path, thread_watch
):
    """kill -9 of the server during download(): no target and no .part file locally."""
    process, port = classic_server
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    target = local_dir / "copy.bin"
    conn = connect("127.0.0.1", port, service=ClassicService)
    trigger = _when_partial(local_dir, lambda: os.kill(process.pid, signal.SIGKILL))
    try:
        with pytest.raises(ConnectionClosed) as raised:
            classic.download(conn, str(source_file), str(target), chunk_size=CHUNK)
    finally:
        trigger.join(30)
        conn.close()
    assert "closed" in str(raised.value)
    assert os.listdir(local_dir) == []


@pytest.fixture(autouse=True)
def main_thread_gc() -> Iterator[None]:
    """Collect garbage on the main thread after each test, once its loop is closed.

    Qt objects of a test sit in reference cycles. Freed later by the cyclic collector
    on another thread, a QObject with a timer dies outside its thread and a later
    event loop crashes on it.
    """
    yield
    gc.collect()


# -- the application's transfer queue --------------------------------------------------


@pytest.fixture
def qloop(qapp):
    """A qasync event loop on the test QApplication, closed after the test."""
    import qasync
    from rpyc_explorer.app import close_loop

    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    close_loop(loop)


@pytest.fixture
def explorer_session(qloop):
    """A RemoteSession on an ExplorerService in a child process, with that process."""
    from rpyc_explorer.machines.record import Machine
    from rpyc_explorer.session.remote import RemoteSession

    process, port = start_server_process(
        "rpyc_engine.services.explorer.ExplorerService"
    )
    conn = connect("127.0.0.1", port)
    session = RemoteSession(Machine.this_computer(), conn, kind="explorer")
    yield session, process
    qloop.run_until_complete(asyncio.wait_for(session.close(), 20))
    stop_process(process)


def _run_transfer(qloop, queue, transfer, fault) -> None:
    """Run the queue until ``transfer`` ends, calling ``fault()`` after one chunk."""
    from rpyc_explorer.transfers import CHUNK_SIZE

    fired = []

    def on_changed(changed) -> None:
        if changed is transfer and changed.done >= CHUNK_SIZE and not fired:
            fired.append(True)
            fault()

    queue.changed.connect(on_changed)

    async def until_finished() -> None:
        while transfer.state in ("queued", "running"):
            await asyncio.sleep(0.01)

    qloop.run_until_complete(asyncio.wait_for(until_finished(), 60))
    assert fired == [True]


def test_queue_upload_server_killed(explorer_session, qloop, source_file, tmp_path):
    """The app's upload fails with a message, and no file has the target name."""
    from rpyc_explorer.transfers import TransferQueue

    session, process = explorer_session
    target_dir = tmp_path / "remote"
    target_dir.mkdir()
    target = target_dir / "copy.bin"
    queue = TransferQueue(session)
    transfer = queue.upload(str(source_file), str(target))
    _run_transfer(qloop, queue, transfer, lambda: os.kill(process.pid, signal.SIGKILL))
    assert transfer.state == "failed"
    assert "closed" in transfer.error
    assert not target.exists()
    assert session.is_closed


def test_queue_upload_connection_cut(explorer_session, qloop, source_file, tmp_path):
    """A connection cut mid-upload: the server deletes its temp file, no target."""
    from rpyc_explorer.transfers import TransferQueue

    session, _process = explorer_session
    target_dir = tmp_path / "remote"
    target_dir.mkdir()
    target = target_dir / "copy.bin"
    queue = TransferQueue(session)
    transfer = queue.upload(str(source_file), str(target))
    sock = session.conn._driver.stream.sock
    _run_transfer(qloop, queue, transfer, lambda: sock.shutdown(socket.SHUT_RDWR))
    assert transfer.state == "failed"
    # The server aborts the upload of a closed connection and deletes its temp file.
    assert wait_until(lambda: os.listdir(target_dir) == [], 10)


def test_queue_download_server_killed(explorer_session, qloop, source_file, tmp_path):
    """The app's download fails; neither the target nor its temp file is left."""
    from rpyc_explorer.transfers import TransferQueue

    session, process = explorer_session
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    target = local_dir / "copy.bin"
    queue = TransferQueue(session)
    transfer = queue.download(str(source_file), str(target))
    _run_transfer(qloop, queue, transfer, lambda: os.kill(process.pid, signal.SIGKILL))
    assert transfer.state == "failed"
    assert transfer.error
    assert os.listdir(local_dir) == []
