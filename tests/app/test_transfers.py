"""The transfer queue against a real ExplorerService over loopback."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer_support import make_session, serve_explorer  # noqa: E402
from rpyc_explorer.transfers import (  # noqa: E402
    CHUNK_SIZE,
    TransferQueue,
    download_mode,
)


@pytest.fixture
def session(qloop):
    with serve_explorer() as (conn, _counter):
        remote = make_session(conn)
        yield remote
        qloop.run_until_complete(remote.close())


async def finished(queue: TransferQueue, transfer, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while transfer.state in ("queued", "running"):
        assert loop.time() < deadline, f"transfer still {transfer.state}"
        await asyncio.sleep(0.01)
    return transfer


def big_file(path: Path, chunks: float) -> bytes:
    data = os.urandom(int(CHUNK_SIZE * chunks))
    path.write_bytes(data)
    return data


def test_upload_and_download_round_trip(session, tmp_path, arun):
    local = tmp_path / "local"
    remote = tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    data = big_file(local / "blob", 2.5)
    queue = TransferQueue(session)
    up = arun(finished(queue, queue.upload(str(local / "blob"), str(remote / "blob"))))
    assert up.state == "done"
    assert (remote / "blob").read_bytes() == data
    assert up.done == len(data)
    assert up.speed() > 0
    down = arun(
        finished(queue, queue.download(str(remote / "blob"), str(local / "copy")))
    )
    assert down.state == "done"
    assert (local / "copy").read_bytes() == data
    assert sorted(p.name for p in local.iterdir()) == ["blob", "copy"]


@pytest.mark.parametrize("remote_mode", [0o644, 0o755, 0o600, 0o666])
def test_download_gets_remote_mode_less_umask(session, tmp_path, arun, remote_mode):
    source = tmp_path / "source"
    source.write_text("data")
    source.chmod(remote_mode)
    old_umask = os.umask(0o022)
    try:
        queue = TransferQueue(session)
        target = tmp_path / "copy"
        down = arun(finished(queue, queue.download(str(source), str(target))))
    finally:
        os.umask(old_umask)
    assert down.state == "done"
    assert target.stat().st_mode & 0o777 == remote_mode & ~0o022


def test_download_mode_without_remote_mode():
    old_umask = os.umask(0o027)
    try:
        assert download_mode(None) == 0o640
        assert download_mode(0o100755) == 0o750
    finally:
        os.umask(old_umask)


def test_upload_cancel_leaves_no_file(session, tmp_path, arun):
    big_file(tmp_path / "blob", 6)
    target = tmp_path / "remote" / "blob"
    target.parent.mkdir()
    queue = TransferQueue(session)
    seen_target = []

    def on_changed(transfer) -> None:
        seen_target.append(target.exists())
        if transfer.done >= CHUNK_SIZE:
            queue.cancel(transfer)

    queue.changed.connect(on_changed)
    transfer = arun(finished(queue, queue.upload(str(tmp_path / "blob"), str(target))))
    assert transfer.state == "cancelled"
    assert transfer.done < 6 * CHUNK_SIZE
    assert list(target.parent.iterdir()) == []
    assert not any(seen_target)


def test_download_is_atomic_and_cancel_cleans_up(session, tmp_path, arun):
    big_file(tmp_path / "source", 4)
    target = tmp_path / "out" / "copy"
    target.parent.mkdir()
    queue = TransferQueue(session)
    seen_target = []

    def on_changed(transfer) -> None:
        if transfer.state == "running":
            seen_target.append(target.exists())
        if transfer.done >= 2 * CHUNK_SIZE:
            queue.cancel(transfer)

    queue.changed.connect(on_changed)
    transfer = arun(
        finished(queue, queue.download(str(tmp_path / "source"), str(target)))
    )
    assert transfer.state == "cancelled"
    assert seen_target and not any(seen_target)
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_conflict_question_not_timed(session, tmp_path, arun, direction):
    source = tmp_path / "source.txt"
    source.write_bytes(b"fourteen bytes")
    target = tmp_path / "target.txt"
    target.write_bytes(b"old")
    os.utime(target, (1_000_000_000, 1_000_000_000))
    answered = []

    async def resolve(transfer) -> str:
        assert transfer.source_info == (14, source.stat().st_mtime)
        assert transfer.target_info == (3, 1_000_000_000)
        await asyncio.sleep(0.2)  # the user reads the question
        answered.append(time.monotonic())
        return "overwrite"

    queue = TransferQueue(session, resolve)
    add = queue.upload if direction == "upload" else queue.download
    transfer = arun(finished(queue, add(str(source), str(target))))
    assert transfer.state == "done"
    assert len(answered) == 1
    # The clock starts with the data, so the time spent on the question is not counted.
    assert transfer.started >= answered[0]
    assert target.read_bytes() == b"fourteen bytes"


@pytest.mark.parametrize(
    ("choice", "expected_names", "content"),
    [
        ("overwrite", ["taken.txt"], b"new"),
        ("skip", ["taken.txt"], b"old"),
        ("rename", ["taken (1).txt", "taken.txt"], b"old"),
    ],
)
def test_upload_conflict_choices(
    session, tmp_path, arun, choice, expected_names, content
):
    (tmp_path / "new.txt").write_bytes(b"new")
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "taken.txt").write_bytes(b"old")
    asked = []

    async def resolve(transfer) -> str:
        asked.append(transfer.remote_path)
        return choice

    queue = TransferQueue(session, resolve)
    transfer = arun(
        finished(
            queue, queue.upload(str(tmp_path / "new.txt"), str(remote / "taken.txt"))
        )
    )
    assert asked == [str(remote / "taken.txt")]
    assert transfer.state == ("skipped" if choice == "skip" else "done")
    assert sorted(p.name for p in remote.iterdir()) == expected_names
    assert (remote / "taken.txt").read_bytes() == content


def test_download_conflict_rename(session, tmp_path, arun):
    (tmp_path / "remote.txt").write_bytes(b"remote")
    (tmp_path / "local.txt").write_bytes(b"local")

    async def resolve(transfer) -> str:
        return "rename"

    queue = TransferQueue(session, resolve)
    transfer = arun(
        finished(
            queue,
            queue.download(str(tmp_path / "remote.txt"), str(tmp_path / "local.txt")),
        )
    )
    assert transfer.state == "done"
    assert transfer.local_path == str(tmp_path / "local (1).txt")
    assert (tmp_path / "local (1).txt").read_bytes() == b"remote"
    assert (tmp_path / "local.txt").read_bytes() == b"local"


def test_upload_error_is_reported(session, tmp_path, arun):
    (tmp_path / "f").write_bytes(b"x")
    queue = TransferQueue(session)
    transfer = arun(
        finished(
            queue, queue.upload(str(tmp_path / "f"), str(tmp_path / "nowhere" / "f"))
        )
    )
    assert transfer.state == "failed"
    assert transfer.error_code == "not-found"
    assert transfer.error == (
        f"cannot upload to {tmp_path / 'nowhere' / 'f'}: No such file or directory"
    )
