"""`SessionController`: connect, deploy, disconnect and close machines.

Each connect is an asyncio task on the qasync loop. Blocking steps (ssh, plumbum,
DeployedServer, the engine's socket connect) run in the controller's worker threads.
Their progress reaches the loop through `call_soon_threadsafe` and leaves as Qt
signals. Cancelling the task sets the attempt's cancel event, waits
for the running step to stop, and tears everything down.

Flow for an SSH machine: resolve with `ssh -G`, then check the jump host's key and
the machine's key. Unknown keys go to the user and a changed key stops the connect.
Then authenticate once through the askpass socket into a ControlMaster, and deploy
the explorer service over that master with `DeployedServer`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal

from ..machines.credentials import CredentialStore, Secret
from ..machines.known_hosts import ForgetResult, KnownHosts
from ..machines.record import Machine
from . import connect_steps
from .askpass import AskpassRequest
from .attempt import Attempt
from .logs import MachineLogAdapter, loop_sink, weak_emitter, weak_method
from .phases import Phase, SessionError
from .prompts import AskHostKey, AskSecret, SecretPrompt, secret_of
from .remote import RemoteSession

logger = logging.getLogger(__name__)

T = TypeVar("T")
EXPLORER_SERVICE = "rpyc_engine.services.explorer.ExplorerService"
# How long a cancelled step may take to notice the cancel and clean up.
CANCEL_WAIT_SECONDS = 20.0
CLOSE_TIMEOUT_SECONDS = 10.0


class SessionController(QObject):
    """Connects machines and keeps their sessions.

    Args:
        credentials: keyring access for passwords and passphrases.
        known_hosts: the known-hosts files.
        ask_host_key: coroutine function that shows an unknown host key.
        ask_secret: coroutine function that requests a password or passphrase.
        service: dotted name of the service to deploy.
    """

    # machine id, Phase value, fraction 0..1 or -1 when unknown, detail text.
    phase_changed = Signal(str, str, float, str)
    # machine id, log line; lines of the connect phases (a session has its own).
    log = Signal(str, str)
    # The new RemoteSession, once connected.
    session_opened = Signal(object)
    # machine id, reason; emitted when a session ends for any reason.
    session_closed = Signal(str, str)
    # machine id, error message; emitted when a connect fails (not when cancelled).
    connect_failed = Signal(str, str)

    def __init__(
        self,
        credentials: CredentialStore,
        known_hosts: KnownHosts,
        ask_host_key: AskHostKey,
        ask_secret: AskSecret,
        service: str = EXPLORER_SERVICE,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.credentials = credentials
        self.known_hosts = known_hosts
        self.ask_host_key = ask_host_key
        self.ask_secret = ask_secret
        self.service = service
        self.sessions: dict[str, RemoteSession] = {}
        self._tasks: dict[str, asyncio.Task[RemoteSession]] = {}
        self._executor = _new_executor()
        self._executor_closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # -- public API ------------------------------------------------------------------

    def is_connecting(self, machine_id: str) -> bool:
        """True while a connect of the machine runs."""
        return machine_id in self._tasks

    async def connect(self, machine: Machine) -> RemoteSession:
        """Connect (and deploy to) `machine`; return its session.

        A second call while one runs waits for the same attempt; a call for a
        connected machine returns its session. Cancelling the caller cancels the
        attempt (for every caller waiting on it) and waits for its cleanup.

        Raises:
            SessionError: a phase failed; the message states which, why and what
                to try.
            asyncio.CancelledError: `cancel()` was called.
        """
        if machine.id in self.sessions:
            return self.sessions[machine.id]
        task = self._tasks.get(machine.id)
        if task is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            if self._executor_closed:
                self._executor, self._executor_closed = _new_executor(), False
            task = asyncio.ensure_future(self._connect(machine))
            self._tasks[machine.id] = task
            task.add_done_callback(lambda _: self._tasks.pop(machine.id, None))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller was cancelled: cancel the attempt too, and return only
            # once its cleanup has run, so "cancelled" also means "cleaned up".
            task.cancel()
            await asyncio.wait(
                [task], timeout=CANCEL_WAIT_SECONDS + CLOSE_TIMEOUT_SECONDS
            )
            raise

    def cancel(self, machine_id: str) -> bool:
        """Cancel a running connect; return False when none runs."""
        task = self._tasks.get(machine_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def disconnect(self, machine_id: str) -> list[str]:
        """Close the machine's session; return cleanup problems (empty when clean)."""
        session = self.sessions.get(machine_id)
        if session is None:
            return []
        return await session.close(CLOSE_TIMEOUT_SECONDS)

    async def reconnect(self, machine: Machine) -> RemoteSession:
        """Close the machine's session if any, then connect again."""
        await self.disconnect(machine.id)
        return await self.connect(machine)

    async def close_all(self) -> dict[str, list[str]]:
        """Cancel every connect and close every session, verifying cleanup.

        Returns:
            Cleanup problems by machine id; only machines with problems appear.
        """
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ids = list(self.sessions)
        results = await asyncio.gather(
            *(self.disconnect(machine_id) for machine_id in ids), return_exceptions=True
        )
        problems: dict[str, list[str]] = {}
        for machine_id, result in zip(ids, results):
            if isinstance(result, BaseException):
                problems[machine_id] = [f"closing failed: {result}"]
            elif result:
                problems[machine_id] = list(result)
        self._executor.shutdown(wait=False)
        self._executor_closed = True
        return problems

    def forget_host_key(self, host: str, port: int) -> ForgetResult:
        """Remove a host's keys from the app's known-hosts file (never ~/.ssh)."""
        return self.known_hosts.forget(host, port)

    def forget_secret(self, machine_id: str, kind: str = "password") -> bool:
        """Delete a remembered password or passphrase of a machine."""
        return self.credentials.forget(machine_id, kind)  # type: ignore[arg-type]

    def keyring_notice(self) -> str:
        """Return the one-time "passwords cannot be remembered" message, or ""."""
        return self.credentials.take_notice()

    # -- the connect task ------------------------------------------------------------

    async def _connect(self, machine: Machine) -> RemoteSession:
        sink = loop_sink(weak_emitter(self, "log", machine.id))
        log = MachineLogAdapter(logger, machine.name, sink=sink)
        attempt = Attempt(machine, log)
        log.info("connecting to %s (%s)", machine.target, machine.kind)
        try:
            if machine.kind == "rpyc":
                conn = await self.run_step(
                    attempt,
                    connect_steps.connect_rpyc,
                    attempt,
                    weak_method(self.report),
                )
            else:
                conn = await self._deploy(attempt)
            kind = await self.run_step(attempt, connect_steps.detect_kind, conn)
        except asyncio.CancelledError:
            log.info("connect cancelled")
            await self._teardown(attempt)
            raise
        except SessionError as exc:
            log.error("%s failed: %s", exc.phase.label.lower(), exc.reason)
            await self._teardown(attempt)
            self.connect_failed.emit(machine.id, str(exc))
            raise
        except Exception as exc:
            log.exception("connect failed unexpectedly")
            await self._teardown(attempt)
            error = SessionError(
                machine.name, Phase.CONNECTING, f"{type(exc).__name__}: {exc}"
            )
            self.connect_failed.emit(machine.id, str(error))
            raise error from exc
        return self._open_session(attempt, conn, kind)

    async def _deploy(self, attempt: Attempt) -> Any:
        if attempt.machine.kind == "ssh":
            await connect_steps.prepare_ssh(self, attempt)
        target = await self.run_step(attempt, connect_steps.target_machine, attempt)
        return await self.run_step(
            attempt,
            connect_steps.deploy,
            attempt,
            target,
            self.service,
            weak_method(self.report),
        )

    def _open_session(self, attempt: Attempt, conn: Any, kind: str) -> RemoteSession:
        machine = attempt.machine
        session = RemoteSession(machine, conn, kind=kind, deployment=attempt)  # type: ignore[arg-type]
        self.sessions[machine.id] = session
        session.closed.connect(
            functools.partial(weak_method(self._on_session_closed), machine.id)
        )
        self.report(machine.id, Phase.CONNECTED, 1.0, kind)
        attempt.log.info("connected (%s service)", kind)
        self.session_opened.emit(session)
        return session

    def _on_session_closed(self, machine_id: str, reason: str) -> None:
        self.sessions.pop(machine_id, None)
        self.session_closed.emit(machine_id, reason)

    async def _teardown(self, attempt: Attempt) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.shield(
                loop.run_in_executor(
                    self._executor, attempt.close, CLOSE_TIMEOUT_SECONDS
                )
            )
        except Exception:  # noqa: BLE001 - teardown reports through the log
            attempt.log.exception("cleanup failed")

    # -- helpers used by connect_steps ----------------------------------------------

    async def run_step(self, attempt: Attempt, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking `fn(*args)` in a worker thread; on cancel, stop it and wait."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            attempt.cancel_event.set()
            try:
                await asyncio.wait_for(asyncio.shield(future), CANCEL_WAIT_SECONDS)
            except BaseException:  # noqa: BLE001 - the step's own error no longer matters
                pass
            raise

    def report(
        self, machine_id: str, phase: Phase, fraction: float | None, detail: str
    ) -> None:
        """Emit `phase_changed`; callable from any thread."""
        value = -1.0 if fraction is None else float(fraction)
        args = (machine_id, phase.value, value, detail)
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self.phase_changed.emit(*args)
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.phase_changed.emit, *args)
            except RuntimeError:
                pass  # The loop closed between the check and the call.

    def answer_prompt(self, attempt: Attempt, request: AskpassRequest) -> Secret | None:
        """Answer an ssh prompt from the keyring or the user (askpass thread)."""
        machine = attempt.machine
        if attempt.cancel_event.is_set():
            return None
        if request.kind == "other":
            attempt.log.warning("declined an unexpected ssh prompt: %r", request.prompt)
            return None
        is_target = request.hop == "target"
        can_store = is_target and self.credentials.available
        if can_store and request.kind not in attempt.tried_stored:
            attempt.tried_stored.add(request.kind)
            stored = self.credentials.get(machine.id, request.kind)  # type: ignore[arg-type]
            if stored is not None:
                attempt.used_stored_secret = True
                attempt.log.info("using the remembered %s", request.kind)
                return stored
        prompt = SecretPrompt(
            machine, request.kind, request.prompt, can_store, not is_target
        )
        reply = self._wait_for_ui(attempt, self.ask_secret(prompt))
        secret, remember = secret_of(reply)
        if secret is None:
            attempt.prompt_cancelled = True
            return None
        if remember and can_store:
            attempt.pending_remember[request.kind] = secret
        return secret

    def _wait_for_ui(self, attempt: Attempt, coro: Any) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        while True:
            try:
                return future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                if attempt.cancel_event.is_set():
                    future.cancel()
                    return None
            except (concurrent.futures.CancelledError, Exception):  # noqa: BLE001
                attempt.log.warning("the password prompt failed or was closed")
                return None


def _new_executor() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=8, thread_name_prefix="session-controller"
    )
