"""`RemoteSession`: one connected machine, usable from the GUI thread.

The engine's threaded connection blocks the calling thread while it waits for a
reply, so every remote call runs in this session's worker threads and comes back
to the asyncio loop as an awaitable, so the GUI thread does not wait on the network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from PySide6.QtCore import QObject, Signal

from ..machines.record import Machine
from .logs import MachineLogAdapter, loop_sink, weak_emitter

logger = logging.getLogger(__name__)

SessionKind = Literal["explorer", "classic", "service"]
T = TypeVar("T")

# Service names as the remote root reports them through get_service_name().
_EXPLORER_NAMES = frozenset({"EXPLORER"})
_CLASSIC_NAMES = frozenset({"SLAVE", "CLASSIC", "MASTER"})
_WORKERS = 4


class Deployment(Protocol):
    """The part of a deployment (the engine's DeployedServer) that a session uses."""

    def close(self, timeout: float = ...) -> Any: ...


def detect_kind(conn: Any) -> SessionKind:
    """Return the session kind from the remote root's service name (blocking call)."""
    try:
        name = str(conn.root.get_service_name()).upper()
    except Exception as exc:  # noqa: BLE001 - any service without the method is plain
        logger.debug("cannot read the service name: %s", exc)
        return "service"
    if name in _EXPLORER_NAMES:
        return "explorer"
    if name in _CLASSIC_NAMES:
        return "classic"
    return "service"


class RemoteSession(QObject):
    """One connected machine: the connection, its root and optional deployment.

    Created by the session controller once connect or deploy has succeeded.

    Attributes:
        machine: the machine this session is connected to.
        conn: the rpyc_engine connection.
        kind: "explorer" (our ExplorerService), "classic" (a classic/slave
            server) or "service" (any other service).
        deployment: the DeployedServer that runs the remote side, or None when
            the server was already running (kind "rpyc" machines).
        logger: adapter that prefixes the machine name and feeds `log`.
    """

    # Emitted once when the session ends; carries the reason ("closed by user",
    # "connection lost: ...").
    closed = Signal(str)
    # Emitted for each INFO-or-higher line about this machine, for the log pane.
    log = Signal(str)

    def __init__(
        self,
        machine: Machine,
        conn: Any,
        kind: SessionKind = "service",
        deployment: Deployment | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.machine = machine
        self.conn = conn
        self.kind: SessionKind = kind
        self.deployment = deployment
        self.logger = MachineLogAdapter(
            logger, machine.name, sink=loop_sink(weak_emitter(self, "log"))
        )
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=_WORKERS, thread_name_prefix=f"session-{machine.id[:8]}"
        )
        self._closing = False
        self._closed_reason: str | None = None
        self.cleanup_problems: list[str] = []

    @property
    def root(self) -> Any:
        """The netref of the remote service root."""
        return self.conn.root

    # NOTE: a lost connection is noticed on the next call or run; nothing polls
    # the connection while the session is idle.
    @property
    def is_closed(self) -> bool:
        """True once `close()` ran or the connection was lost."""
        return self._closed_reason is not None

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call `root.<name>(*args, **kwargs)` in a worker thread and return its result.

        Raises:
            RuntimeError: the session is closed.
            Exception: whatever the remote call raised.
        """

        def invoke() -> Any:
            return getattr(self.root, name)(*args, **kwargs)

        return await self.run(invoke)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking netref work `fn(*args)` in a worker thread."""
        if self.is_closed or self._closing:
            raise RuntimeError(
                f"session to {self.machine.name!r} is closed; connect again to use it"
            )
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args)
            )
        except Exception as exc:
            if not self._closing and getattr(self.conn, "closed", False):
                self._mark_closed(f"connection lost: {exc}")
            raise

    async def close(self, timeout: float = 10.0) -> list[str]:
        """Close the connection and the deployment, verify cleanup, emit `closed`.

        Returns:
            The cleanup problems found (empty when everything stopped); they are
            also logged and kept in `cleanup_problems`.
        """
        if self._closing or self._closed_reason is not None:
            self._executor.shutdown(wait=False)
            return self.cleanup_problems
        self._closing = True
        self.logger.info("closing the session")
        loop = asyncio.get_running_loop()
        closer = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            await loop.run_in_executor(closer, self._close_blocking, timeout)
        finally:
            closer.shutdown(wait=False)
            self._executor.shutdown(wait=False, cancel_futures=True)
        for problem in self.cleanup_problems:
            self.logger.warning("cleanup: %s", problem)
        self._mark_closed("closed by user")
        return self.cleanup_problems

    def _close_blocking(self, timeout: float) -> None:
        try:
            self.conn.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken link is not fatal
            self.logger.debug("closing the connection failed: %s", exc)
        if self.deployment is None:
            return
        try:
            result = self.deployment.close(timeout)
        except Exception as exc:  # noqa: BLE001 - reported, then the session ends
            self.cleanup_problems.append(f"stopping the remote server failed: {exc}")
            result = None
        if isinstance(result, (list, tuple)):
            self.cleanup_problems.extend(str(item) for item in result)

    def _mark_closed(self, reason: str) -> None:
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self.logger.info("session ended: %s", reason)
        self.closed.emit(reason)
