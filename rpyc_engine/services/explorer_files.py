"""File-system helpers of the explorer service: directory pages, stat, file ranges.

Every function here serves one remote call and returns brine-dumpable values
(tuples, str, int, float, bool, bytes, None), so the whole answer travels by value.
Errors such as permission denied or a vanished directory come back as an error tuple
``(code, message, path)`` in place of the result, never as a raised exception.

Server side: copied onto remote hosts, so CPython 3.8+ and the standard library only.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import stat
import threading
import uuid
from typing import Dict, Optional, Tuple

try:  # pwd and grp exist only on POSIX hosts.
    import grp
    import pwd
except ImportError:  # pragma: no cover - Windows hosts
    grp = None  # type: ignore[assignment]
    pwd = None  # type: ignore[assignment]

ErrorTuple = Tuple[str, str, str]
# (name, kind, size, mtime, mode, owner, group, link_target)
Entry = Tuple[str, str, int, float, int, str, str, str]

DEFAULT_PAGE = 500
MAX_PAGE = 5000
MAX_RANGE = 16 * 1024 * 1024
PREVIEW_LIMIT = 256 * 1024
SORT_KEYS = ("name", "kind", "size", "mtime", "mode", "owner", "group", "target")

_ERRNO_CODES = {
    errno.EACCES: "permission-denied",
    errno.EPERM: "permission-denied",
    errno.ENOENT: "not-found",
    errno.ENOTDIR: "not-a-directory",
    errno.EISDIR: "is-a-directory",
    errno.ENOSPC: "disk-full",
    errno.EEXIST: "exists",
    errno.ENOTEMPTY: "not-empty",
    errno.EXDEV: "cross-device",
}


def error_tuple(exc: BaseException, path: str) -> ErrorTuple:
    """Turn an exception into the ``(code, message, path)`` tuple callers receive."""
    if isinstance(exc, OSError):
        code = _ERRNO_CODES.get(exc.errno or 0, "os-error")
        message = exc.strerror or str(exc)
    else:
        code = "error"
        message = f"{type(exc).__name__}: {exc}"
    return (code, message, path)


class _Names:
    """Caches uid and gid lookups; a listing of 10 000 files has only a few owners."""

    def __init__(self) -> None:
        self._cache: Dict[tuple, str] = {}

    def user(self, uid: int) -> str:
        return self._lookup("user", uid)

    def group(self, gid: int) -> str:
        return self._lookup("group", gid)

    def _lookup(self, table: str, number: int) -> str:
        name = self._cache.get((table, number))
        if name is None:
            name = str(number)
            try:
                if table == "user" and pwd is not None:
                    name = pwd.getpwuid(number).pw_name
                elif table == "group" and grp is not None:
                    name = grp.getgrgid(number).gr_name
            except KeyError:
                pass  # no name for this id: show the number
            self._cache[(table, number)] = name
        return name


_names = _Names()


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def entry_from_stat(name: str, path: str, st: os.stat_result) -> Entry:
    """Build one entry tuple from an lstat result."""
    kind = _kind(st.st_mode)
    target = ""
    if kind == "link":
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
    return (
        name,
        kind,
        int(st.st_size),
        float(st.st_mtime),
        int(st.st_mode),
        _names.user(st.st_uid),
        _names.group(st.st_gid),
        target,
    )


def _scan(path: str, show_hidden: bool, pattern: str) -> list:
    entries = []
    pattern = pattern.lower()
    with os.scandir(path) as it:
        for item in it:
            if not show_hidden and item.name.startswith("."):
                continue
            if pattern and not _matches(item.name.lower(), pattern):
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                # The entry vanished between readdir and lstat: skip it.
                continue
            entries.append(entry_from_stat(item.name, item.path, st))
    return entries


def _matches(name: str, pattern: str) -> bool:
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _sort(entries: list, sort: str) -> None:
    """Sort in place by one of `SORT_KEYS`; a leading ``-`` reverses the order."""
    reverse = sort.startswith("-")
    key = sort.lstrip("-") or "name"
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; expected one of {SORT_KEYS}")
    index = SORT_KEYS.index(key)
    if key == "size":
        # A folder's st_size is the size of the directory file, not of its contents,
        # so folders keep their name order in both directions and files go by size.
        entries.sort(key=lambda entry: (entry[0].lower(), entry[0]))
        entries.sort(
            key=lambda entry: entry[index] if entry[1] != "dir" else 0,
            reverse=reverse,
        )
    elif key == "name":
        entries.sort(key=lambda entry: (entry[0].lower(), entry[0]), reverse=reverse)
    else:
        entries.sort(
            key=lambda entry: (entry[index], entry[0].lower()), reverse=reverse
        )
    # Directories stay first whatever the order, as in desktop file managers; the sort
    # is stable, so the order inside each group survives.
    entries.sort(key=lambda entry: entry[1] != "dir")


class DirectoryLister:
    """Serves directory pages from a snapshot taken by the first page.

    Page 0 always rescans. Later pages reuse the snapshot with the same path, filter and
    order, so every name appears exactly once across the pages of one listing, even when
    the directory changes meanwhile (unless more than ``max_snapshots`` other listings
    evicted the snapshot, which then is taken again).
    """

    def __init__(self, max_snapshots: int = 8) -> None:
        self._snapshots: Dict[tuple, list] = {}
        self._max = max_snapshots
        self._lock = threading.Lock()

    def page(
        self,
        path: str,
        offset: int = 0,
        limit: int = DEFAULT_PAGE,
        show_hidden: bool = False,
        sort: str = "name",
        pattern: str = "",
    ) -> Tuple[tuple, int, Optional[ErrorTuple]]:
        """Return ``(entries, total, error)`` for one page of a directory.

        ``sort`` is one of `SORT_KEYS`, with a leading ``-`` for descending order.
        ``pattern`` keeps names that contain it, case-insensitively, or that match it as
        a glob when it contains ``*``, ``?`` or ``[``.
        """
        limit = max(1, min(int(limit), MAX_PAGE))
        key = (path, bool(show_hidden), sort, pattern)
        with self._lock:
            entries = self._snapshots.get(key) if offset > 0 else None
        if entries is None:
            try:
                entries = _scan(path, show_hidden, pattern)
                _sort(entries, sort)
            except (OSError, ValueError) as exc:
                return ((), 0, error_tuple(exc, path))
            with self._lock:
                self._snapshots.pop(key, None)
                self._snapshots[key] = entries
                while len(self._snapshots) > self._max:
                    self._snapshots.pop(next(iter(self._snapshots)))
        return (tuple(entries[offset : offset + limit]), len(entries), None)


def stat_path(path: str) -> Tuple[Optional[Entry], Optional[ErrorTuple]]:
    """Return ``(entry, error)`` for one path, not following a final symlink."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return (None, error_tuple(exc, path))
    name = os.path.basename(path.rstrip("/")) or path
    return (entry_from_stat(name, path, st), None)


def home_directory() -> str:
    """Return the remote user's home directory."""
    return os.path.expanduser("~")


def make_directory(path: str) -> Optional[ErrorTuple]:
    """Create one directory; return an error tuple or None."""
    try:
        os.mkdir(path)
    except OSError as exc:
        return error_tuple(exc, path)
    return None


def rename_path(source: str, target: str) -> Optional[ErrorTuple]:
    """Rename ``source`` to ``target``; an existing target is an ``exists`` error."""
    if os.path.lexists(target):
        return ("exists", "File exists", target)
    try:
        os.rename(source, target)
    except OSError as exc:
        return error_tuple(exc, source)
    return None


def delete_path(path: str, recursive: bool = False) -> Optional[ErrorTuple]:
    """Delete a file, a symlink (never its target) or a directory.

    A non-empty directory needs ``recursive``. The file-system root and the home
    directory are never deleted.
    """
    real = os.path.abspath(path)
    if real in ("/", os.path.abspath(home_directory())) or real == os.path.dirname(
        real
    ):
        return (
            "refused",
            "Deleting the root or the home directory is not allowed",
            path,
        )
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
        elif recursive:
            # rmtree removes symlinks inside the tree without following them.
            shutil.rmtree(path)
        else:
            os.rmdir(path)
    except OSError as exc:
        return error_tuple(exc, getattr(exc, "filename", None) or path)
    return None


def unique_name(path: str) -> str:
    """Return ``path`` or, when it exists, the first free ``stem (n).ext`` beside it."""
    if not os.path.lexists(path):
        return path
    directory, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    if stem.startswith(".") and not ext:
        stem, ext = name, ""
    number = 1
    while True:
        candidate = os.path.join(directory, f"{stem} ({number}){ext}")
        if not os.path.lexists(candidate):
            return candidate
        number += 1


def read_range(
    path: str, offset: int, length: int
) -> Tuple[bytes, int, Optional[ErrorTuple]]:
    """Return ``(data, file_size, error)`` for up to ``length`` bytes at ``offset``."""
    length = max(0, min(int(length), MAX_RANGE))
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(offset)
            return (handle.read(length), size, None)
    except OSError as exc:
        return (b"", 0, error_tuple(exc, path))


def read_preview(path: str, limit: int = PREVIEW_LIMIT) -> tuple:
    """Return ``(text, is_binary, size, truncated, error)`` for a text preview.

    A file is binary when its first bytes contain NUL or are not valid UTF-8 (a cut
    multi-byte character at the end of the window is allowed).
    """
    limit = max(0, min(int(limit), MAX_RANGE))
    data, size, error = read_range(path, 0, limit)
    if error is not None:
        return ("", False, 0, False, error)
    truncated = size > len(data)
    if b"\0" in data[:8192]:
        return ("", True, size, truncated, None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not truncated or exc.start < len(data) - 3:
            return ("", True, size, truncated, None)
        text = data[: exc.start].decode("utf-8")
    return (text, False, size, truncated, None)


class UploadTable:
    """Open uploads, each writing a temp file beside its target, renamed at the end.

    A cancelled, failed or abandoned upload removes its temp file, so no half-written
    file ever appears under the target name.
    """

    def __init__(self) -> None:
        self._uploads: Dict[str, tuple] = {}
        self._lock = threading.Lock()

    def open(self, target: str) -> Tuple[str, Optional[ErrorTuple]]:
        """Start an upload to ``target``; return ``(upload_id, error)``."""
        directory, name = os.path.split(target)
        upload_id = uuid.uuid4().hex
        temp = os.path.join(directory, f".{name}.{upload_id[:12]}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            return ("", error_tuple(exc, target))
        with self._lock:
            self._uploads[upload_id] = (fd, temp, target)
        return (upload_id, None)

    def write(self, upload_id: str, offset: int, data: bytes) -> Optional[ErrorTuple]:
        """Write one chunk at ``offset``; a failed write aborts the upload."""
        fd, temp, target = self._get(upload_id)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            self.abort(upload_id)
            return error_tuple(exc, target)
        return None

    def commit(self, upload_id: str, overwrite: bool) -> Optional[ErrorTuple]:
        """Flush, then rename the temp file onto the target."""
        fd, temp, target = self._get(upload_id)
        try:
            os.fsync(fd)
            if not overwrite and os.path.lexists(target):
                self.abort(upload_id)
                return ("exists", "File exists", target)
            os.replace(temp, target)
        except OSError as exc:
            self.abort(upload_id)
            return error_tuple(exc, target)
        with self._lock:
            self._uploads.pop(upload_id, None)
        os.close(fd)
        return None

    def abort(self, upload_id: str) -> None:
        """Drop an upload and its temp file; unknown ids are ignored."""
        with self._lock:
            record = self._uploads.pop(upload_id, None)
        if record is None:
            return
        fd, temp, _ = record
        try:
            os.close(fd)
        except OSError:
            pass
        try:
            os.unlink(temp)
        except OSError:
            pass

    def abort_all(self) -> None:
        """Abort every open upload (the connection closed)."""
        with self._lock:
            ids = list(self._uploads)
        for upload_id in ids:
            self.abort(upload_id)

    def _get(self, upload_id: str) -> tuple:
        with self._lock:
            record = self._uploads.get(upload_id)
        if record is None:
            raise KeyError(
                f"no open upload with id {upload_id!r}; open one with upload_open"
            )
        return record
