"""The batched remote calls of the explorer service, apart from the engine's Service.

`ExplorerMethods` keeps one client's state (console namespace and runs, open uploads,
directory snapshots, evaluated properties) and its ``exposed_`` methods. Each method is
one remote call that returns brine-dumpable tuples, so the answer travels by value in
one round trip. `rpyc_engine.services.explorer.ExplorerService` mixes it into the
classic SlaveService.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Optional

from rpyc_engine.services import explorer_files as files
from rpyc_engine.services.explorer_complete import complete
from rpyc_engine.services.explorer_console import Console, input_status
from rpyc_engine.services.explorer_objects import SHOW_CALLABLES, ObjectBrowser


class ExplorerMethods:
    """Batched explorer calls; one instance serves one connection."""

    def __init__(self, namespace: Optional[dict] = None) -> None:
        self.console = Console(namespace)
        self.objects = ObjectBrowser(self.console.namespace)
        self.lister = files.DirectoryLister()
        self.uploads = files.UploadTable()

    def close_explorer(self) -> None:
        """Abort open uploads and interrupt console runs (the client went away)."""
        self.uploads.abort_all()
        self.console.shutdown()

    # -- host -------------------------------------------------------------------

    def exposed_server_info(self) -> tuple:
        """Return ``(pid, python_version, platform, hostname, cwd, home)``."""
        return (
            os.getpid(),
            platform.python_version(),
            sys.platform,
            socket.gethostname(),
            os.getcwd(),
            files.home_directory(),
        )

    # -- files ------------------------------------------------------------------

    def exposed_list_dir(
        self,
        path: str,
        offset: int = 0,
        limit: int = files.DEFAULT_PAGE,
        show_hidden: bool = False,
        sort: str = "name",
        pattern: str = "",
    ) -> tuple:
        """Return ``(entries, total, error)`` for one page of a directory.

        An entry is ``(name, kind, size, mtime, mode, owner, group, link_target)``.
        """
        return self.lister.page(path, offset, limit, show_hidden, sort, pattern)

    def exposed_stat(self, path: str) -> tuple:
        return files.stat_path(path)

    def exposed_home(self) -> str:
        return files.home_directory()

    def exposed_mkdir(self, path: str) -> Optional[tuple]:
        return files.make_directory(path)

    def exposed_rename(self, source: str, target: str) -> Optional[tuple]:
        return files.rename_path(source, target)

    def exposed_delete(self, path: str, recursive: bool = False) -> Optional[tuple]:
        return files.delete_path(path, recursive)

    def exposed_unique_name(self, path: str) -> str:
        return files.unique_name(path)

    def exposed_read_range(self, path: str, offset: int, length: int) -> tuple:
        return files.read_range(path, offset, length)

    def exposed_preview(self, path: str, limit: int = files.PREVIEW_LIMIT) -> tuple:
        return files.read_preview(path, limit)

    def exposed_upload_open(self, target: str) -> tuple:
        return self.uploads.open(target)

    def exposed_upload_write(
        self, upload_id: str, offset: int, data: bytes
    ) -> Optional[tuple]:
        return self.uploads.write(upload_id, offset, data)

    def exposed_upload_commit(
        self, upload_id: str, overwrite: bool = False
    ) -> Optional[tuple]:
        return self.uploads.commit(upload_id, overwrite)

    def exposed_upload_abort(self, upload_id: str) -> None:
        self.uploads.abort(upload_id)

    # -- objects ----------------------------------------------------------------

    def exposed_object_page(
        self,
        root: str,
        path: tuple,
        offset: int = 0,
        limit: int = 500,
        flags: int = SHOW_CALLABLES,
        filter_text: str = "",
    ) -> tuple:
        """Return ``(rows, total, error)`` for one page of an object's children."""
        return self.objects.page(root, path, offset, limit, flags, filter_text)

    def exposed_object_details(self, root: str, path: tuple) -> tuple:
        return self.objects.details(root, path)

    def exposed_evaluate(self, root: str, path: tuple) -> tuple:
        return self.objects.evaluate(root, path)

    def exposed_send_to_console(self, root: str, path: tuple, name: str = "") -> tuple:
        return self.objects.send_to_console(root, path, name)

    # -- console ----------------------------------------------------------------

    def exposed_complete(self, text: str) -> tuple:
        return complete(self.console.namespace, text)

    def exposed_input_status(self, source: str) -> str:
        return input_status(source)

    def exposed_console_run(self, source: str) -> int:
        return self.console.run(source)

    def exposed_console_poll(self, run_id: int, wait: float = 0.2) -> tuple:
        return self.console.poll(run_id, wait)

    def exposed_console_interrupt(self, run_id: int) -> bool:
        return self.console.interrupt(run_id)
