"""Errors of zero-deploy: which host, which phase, why, and what to try next.

Every error carries the machine alias (``host``), the deploy phase that failed
(``phase``: one of `PHASES` or ``"closing"``), a ``reason``, a ``hint`` and the last lines
of the remote side's stderr. No message ever contains a password, key or other secret:
the deploy sends none over the command line or the environment, and remote stderr is the
only remote text quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

# Only when DeployedServer is given a machine factory: creating the machine.
CONNECTING = "connecting"
FINDING_PYTHON = "finding-python"
UPLOADING = "uploading"
STARTING = "starting"
HANDSHAKE = "handshake"
CLOSING = "closing"
PHASES = (FINDING_PYTHON, UPLOADING, STARTING, HANDSHAKE)

STDERR_LINES = 12
STDERR_LINE_WIDTH = 300


@dataclass(frozen=True)
class Leftover:
    """Something a deployment may have left running or on disk after ``close()``.

    ``kind`` is ``"remote-process"``, ``"unverified-remote-process"`` (the check could
    not run, so the process may or may not be gone), ``"local-process"`` or ``"path"``.
    ``pid`` is set for processes, ``path`` for files and directories. The deploy writes
    no file, so ``"path"`` is only reported by callers that add their own checks.
    """

    host: str
    kind: str
    pid: Optional[int] = None
    path: Optional[str] = None

    def describe(self) -> str:
        """Return a short human-readable description, e.g. ``remote-process 1234``."""
        if self.pid is not None:
            return f"{self.kind} {self.pid} on {self.host}"
        return f"{self.kind} {self.path} on {self.host}"


def cut_stderr(lines: Sequence[str]) -> Tuple[str, ...]:
    """Return the last `STDERR_LINES` lines, each cut to `STDERR_LINE_WIDTH` characters."""
    tail = [line.rstrip("\n") for line in lines[-STDERR_LINES:]]
    return tuple(
        line if len(line) <= STDERR_LINE_WIDTH else line[:STDERR_LINE_WIDTH] + "…"
        for line in tail
    )


class DeployError(Exception):
    """A deploy step failed on one host.

    Attributes:
        host: alias of the machine, e.g. ``ssh://user@example.org``.
        phase: ``"connecting"``, ``"finding-python"``, ``"uploading"``, ``"starting"``,
            ``"handshake"`` or ``"closing"``.
        reason: what went wrong, in one sentence.
        hint: what to try next (may be empty).
        stderr_tail: the last lines of the remote stderr, already cut.
        exit_status: exit status of the remote command or local ssh client, if known.
    """

    def __init__(
        self,
        host: str,
        phase: str,
        reason: str,
        *,
        hint: str = "",
        stderr_tail: Sequence[str] = (),
        exit_status: Optional[int] = None,
    ) -> None:
        self.host = host
        self.phase = phase
        self.reason = reason
        self.hint = hint
        self.stderr_tail = cut_stderr(stderr_tail)
        self.exit_status = exit_status
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"{self.host}: deploy phase {self.phase!r} failed: {self.reason}"
        if self.hint:
            text += f". {self.hint}"
        if self.stderr_tail:
            text += "\nremote stderr (last lines):\n  " + "\n  ".join(self.stderr_tail)
        return text


class NoPythonError(DeployError):
    """No interpreter of at least Python 3.8 was found on the host.

    ``candidates`` lists what the probe tried and found
    (``rpyc_engine.deploy.probe.Candidate``).
    """

    def __init__(
        self, host: str, candidates: Sequence, override: Optional[str]
    ) -> None:
        self.candidates = tuple(candidates)
        tried = "; ".join(c.describe() for c in self.candidates) or "nothing"
        if override:
            reason = (
                f"the interpreter override {override!r} is not Python >= 3.8 ({tried})"
            )
            hint = "Fix the interpreter override or clear it to probe the usual names"
        else:
            reason = f"no Python >= 3.8 found on PATH; tried {tried}"
            hint = "Install Python 3.8 or newer there, or set the interpreter override"
        super().__init__(host, FINDING_PYTHON, reason, hint=hint)


class DeployCancelled(DeployError):
    """The caller cancelled the deploy (``cancel()``, the cancel event, or ``close()``)."""


class TimeoutExpired(DeployError, TimeoutError):
    """A deploy step or ``close(timeout)`` did not finish in time.

    ``leftovers`` lists what may still be running (see `Leftover`); local processes are
    always ended before this is raised.
    """

    def __init__(
        self,
        host: str,
        phase: str,
        reason: str,
        *,
        leftovers: Sequence[Leftover] = (),
        **kwargs: object,
    ) -> None:
        self.leftovers = tuple(leftovers)
        if self.leftovers:
            reason += "; still running: " + ", ".join(
                x.describe() for x in self.leftovers
            )
        super().__init__(host, phase, reason, **kwargs)  # type: ignore[arg-type]
