"""The transfer queue: uploads and downloads of files in chunks, one at a time.

Each chunk is one remote call (`CHUNK_SIZE` bytes). Both directions are atomic. An
upload writes a temp file beside the target on the remote side and renames it at the
end (``upload_open`` / ``upload_write`` / ``upload_commit``). A download writes a local
temp file beside its target and renames it at the end. A cancelled or failed transfer
removes its temp file, so no half file ever appears under the target name. A download
gets the remote file's permission bits, less the local umask, like a local copy.

When the target exists, the queue awaits its ``resolve_conflict`` coroutine function,
which returns ``"overwrite"``, ``"skip"`` or ``"rename"`` (the default is ``"rename"``).

NOTE: transfers move single files; a directory is not walked, so the files pane offers
only files for download and the file dialog only files for upload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from .models.paged_tree import error_message

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
CONFLICT_CHOICES = ("overwrite", "skip", "rename")

ConflictResolver = Callable[["Transfer"], Awaitable[str]]


class TransferCancelled(Exception):
    """The user cancelled the transfer."""


class RemoteFileError(OSError):
    """A file call on the remote side failed; ``code`` is the service's error code."""

    def __init__(self, what: str, error: tuple) -> None:
        super().__init__(f"{what}: {error_message(error)}")
        self.code = str(error[0])


@dataclass
class Transfer:
    """One queued file transfer and its progress."""

    direction: str  # "upload" or "download"
    local_path: str
    remote_path: str
    size: int = 0
    done: int = 0
    state: str = "queued"  # queued, running, done, skipped, failed, cancelled
    error: str = ""
    # The service's error code (such as "permission-denied") of a remote failure.
    error_code: str = ""
    # When the data started to move (after any conflict question), for the speed.
    started: float = 0.0
    finished: float = 0.0
    # (size, mtime) of the file being copied and of the existing target, filled in
    # before the conflict question so that it can show both.
    source_info: tuple[int, float] | None = None
    target_info: tuple[int, float] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancel_requested: bool = False

    @property
    def target(self) -> str:
        return self.remote_path if self.direction == "upload" else self.local_path

    def speed(self) -> float:
        """Return bytes per second so far (0 before the first chunk)."""
        end = self.finished or time.monotonic()
        elapsed = end - self.started if self.started else 0.0
        return self.done / elapsed if elapsed > 0 else 0.0


async def _default_resolver(transfer: Transfer) -> str:
    return "rename"


class TransferQueue(QObject):
    """Runs transfers one after another in an asyncio task."""

    # Emitted with the transfer whenever its state or progress changes.
    changed = Signal(object)
    # Emitted when a transfer reaches a final state (done, skipped, failed, cancelled).
    finished = Signal(object)

    def __init__(
        self,
        session: Any,
        resolve_conflict: ConflictResolver | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.resolve_conflict = resolve_conflict or _default_resolver
        self.transfers: list[Transfer] = []
        self._pending: asyncio.Queue[Transfer] | None = None
        self._worker: asyncio.Task | None = None

    def upload(self, local_path: str, remote_path: str) -> Transfer:
        """Queue an upload of one local file to ``remote_path``."""
        return self._add(Transfer("upload", local_path, remote_path))

    def download(self, remote_path: str, local_path: str) -> Transfer:
        """Queue a download of one remote file to ``local_path``."""
        return self._add(Transfer("download", local_path, remote_path))

    def cancel(self, transfer: Transfer) -> None:
        """Cancel a queued or running transfer; its partial file is removed."""
        transfer.cancel_requested = True
        if transfer.state == "queued":
            self._finish(transfer, "cancelled")

    def _add(self, transfer: Transfer) -> Transfer:
        if self._pending is None:
            self._pending = asyncio.Queue()
        self.transfers.append(transfer)
        self._pending.put_nowait(transfer)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._run())
        self.changed.emit(transfer)
        return transfer

    async def _run(self) -> None:
        assert self._pending is not None
        while not self._pending.empty():
            transfer = self._pending.get_nowait()
            if transfer.state != "queued":
                continue
            try:
                await self._run_one(transfer)
            except TransferCancelled:
                self._finish(transfer, "cancelled")
            except asyncio.CancelledError:
                self._finish(transfer, "cancelled")
                raise
            except Exception as exc:
                log.warning(
                    "%s of %s failed: %s", transfer.direction, transfer.target, exc
                )
                transfer.error_code = getattr(exc, "code", "")
                self._finish(transfer, "failed", str(exc))

    async def _run_one(self, transfer: Transfer) -> None:
        transfer.state = "running"
        self.changed.emit(transfer)
        if transfer.direction == "upload":
            await self._upload(transfer)
        else:
            await self._download(transfer)

    def _finish(self, transfer: Transfer, state: str, error: str = "") -> None:
        transfer.state = state
        transfer.error = error
        transfer.finished = time.monotonic()
        self.changed.emit(transfer)
        self.finished.emit(transfer)

    def _check_cancel(self, transfer: Transfer) -> None:
        if transfer.cancel_requested:
            raise TransferCancelled(transfer.target)

    async def _choose(self, transfer: Transfer) -> str:
        choice = await self.resolve_conflict(transfer)
        if choice not in CONFLICT_CHOICES:
            raise ValueError(
                f"conflict choice {choice!r} is not one of {CONFLICT_CHOICES}"
            )
        return choice

    # -- upload -----------------------------------------------------------------

    async def _upload(self, transfer: Transfer) -> None:
        local = os.stat(transfer.local_path)
        transfer.size = local.st_size
        transfer.source_info = (local.st_size, local.st_mtime)
        overwrite = False
        entry, _ = await self.session.call("stat", transfer.remote_path)
        if entry is not None:
            transfer.target_info = (entry[2], entry[3])
            choice = await self._choose(transfer)
            if choice == "skip":
                self._finish(transfer, "skipped")
                return
            if choice == "rename":
                transfer.remote_path = await self.session.call(
                    "unique_name", transfer.remote_path
                )
            overwrite = choice == "overwrite"
        upload_id, error = await self.session.call("upload_open", transfer.remote_path)
        if error is not None:
            raise RemoteFileError(f"cannot upload to {transfer.remote_path}", error)
        try:
            transfer.started = time.monotonic()
            await self._send_chunks(transfer, upload_id)
            self._check_cancel(transfer)
            error = await self.session.call("upload_commit", upload_id, overwrite)
        except BaseException:
            await _quietly(self.session.call("upload_abort", upload_id))
            raise
        if error is not None:
            raise RemoteFileError(f"cannot finish {transfer.remote_path}", error)
        self._finish(transfer, "done")

    async def _send_chunks(self, transfer: Transfer, upload_id: str) -> None:
        loop = asyncio.get_running_loop()
        with open(transfer.local_path, "rb") as handle:
            while True:
                self._check_cancel(transfer)
                data = await loop.run_in_executor(None, handle.read, CHUNK_SIZE)
                if not data:
                    return
                error = await self.session.call(
                    "upload_write", upload_id, transfer.done, data
                )
                if error is not None:
                    raise RemoteFileError(
                        f"writing {transfer.remote_path} failed", error
                    )
                transfer.done += len(data)
                self.changed.emit(transfer)

    # -- download ---------------------------------------------------------------

    async def _download(self, transfer: Transfer) -> None:
        entry, _ = await self.session.call("stat", transfer.remote_path)
        # The mode of a regular remote file; anything else gets the default mode.
        remote_mode = entry[4] if entry is not None and entry[1] == "file" else None
        if entry is not None:
            transfer.source_info = (entry[2], entry[3])
        if os.path.lexists(transfer.local_path):
            local = os.lstat(transfer.local_path)
            transfer.target_info = (local.st_size, local.st_mtime)
            choice = await self._choose(transfer)
            if choice == "skip":
                self._finish(transfer, "skipped")
                return
            if choice == "rename":
                transfer.local_path = local_unique_name(transfer.local_path)
        directory, name = os.path.split(transfer.local_path)
        fd, temp = tempfile.mkstemp(
            prefix=f".{name}.", suffix=".part", dir=directory or "."
        )
        try:
            transfer.started = time.monotonic()
            with os.fdopen(fd, "wb") as handle:
                await self._receive_chunks(transfer, handle)
                handle.flush()
                # mkstemp makes the file 0600, so give it the mode a copy would get.
                os.fchmod(handle.fileno(), download_mode(remote_mode))
                os.fsync(handle.fileno())
            self._check_cancel(transfer)
            os.replace(temp, transfer.local_path)
        except BaseException:
            _remove_quietly(temp)
            raise
        self._finish(transfer, "done")

    async def _receive_chunks(self, transfer: Transfer, handle: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._check_cancel(transfer)
            data, size, error = await self.session.call(
                "read_range", transfer.remote_path, transfer.done, CHUNK_SIZE
            )
            if error is not None:
                raise RemoteFileError(f"cannot read {transfer.remote_path}", error)
            transfer.size = size
            if not data:
                return
            await loop.run_in_executor(None, handle.write, data)
            transfer.done += len(data)
            self.changed.emit(transfer)
            if transfer.done >= size:
                return

    async def shutdown(self) -> None:
        """Cancel every transfer and wait for the running one to clean up."""
        for transfer in self.transfers:
            if transfer.state in ("queued", "running"):
                self.cancel(transfer)
        if self._worker is not None and not self._worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._worker), 10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._worker.cancel()


def local_unique_name(path: str) -> str:
    """Return ``path`` or the first free ``stem (n).ext`` beside it on this machine."""
    if not os.path.lexists(path):
        return path
    directory, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    number = 1
    while os.path.lexists(os.path.join(directory, f"{stem} ({number}){ext}")):
        number += 1
    return os.path.join(directory, f"{stem} ({number}){ext}")


def download_mode(remote_mode: int | None) -> int:
    """Return the permission bits for a downloaded file, masked by the local umask.

    Args:
        remote_mode: The remote file's ``st_mode``, or None when unknown, which
            gives ``0o666`` less the umask, as for a newly created file.
    """
    bits = 0o666 if remote_mode is None else remote_mode & 0o777
    return bits & ~current_umask()


def current_umask() -> int:
    """Return this process's umask (read from /proc where it exists, so no race)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # NOTE: setting and restoring the umask races with threads creating files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remote_join(directory: str, name: str) -> str:
    return posixpath.join(directory, name)


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.debug("cleanup call failed: %s", exc)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
