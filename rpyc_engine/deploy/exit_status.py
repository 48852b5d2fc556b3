"""Mapping of a remote command that ended before its server started to a DeployError.

The exit status tells the cause: the probe found no interpreter, ssh itself failed, the
bootstrap got a broken payload, or the server could not load its service. Anything else
is reported with the remote stderr so the reader can see what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from rpyc_engine.deploy.bootstrap import EXIT_BAD_PAYLOAD
from rpyc_engine.deploy.errors import (
    FINDING_PYTHON,
    STARTING,
    UPLOADING,
    DeployError,
    NoPythonError,
)
from rpyc_engine.deploy.probe import EXIT_NO_PYTHON, parse_report
from rpyc_engine.deploy.remote import EXIT_SERVICE
from rpyc_engine.deploy.transport import signal_name

# OpenSSH's client exits with 255 when the connection or authentication fails.
SSH_ERROR = 255


@dataclass(frozen=True)
class EarlyExit:
    """What is known about a remote command that ended before the server's HELLO."""

    host: str
    phase: str
    status: Optional[int]
    stderr: Sequence[str]
    service: str
    python_override: Optional[str]


def early_exit_error(exit: EarlyExit) -> DeployError:
    """Return the DeployError that explains ``exit`` (see the module docstring)."""
    if exit.status == EXIT_NO_PYTHON:
        return NoPythonError(exit.host, parse_report(exit.stderr), exit.python_override)
    if exit.status == SSH_ERROR:
        reason = "the ssh connection failed (ssh exit status 255)"
        hint = "Check that 'ssh <host> true' works with the same user, key and options"
        phase = FINDING_PYTHON
    elif exit.status == EXIT_BAD_PAYLOAD:
        reason = "the bootstrap received a truncated or malformed bundle"
        hint = "Retry; if it persists, check the connection for dropped data"
        phase = UPLOADING
    elif exit.status == EXIT_SERVICE:
        reason = f"the server could not load the service {exit.service!r}"
        hint = "Check that the service is importable on that host"
        phase = STARTING
    else:
        how = signal_name(exit.status)
        reason = f"the remote command ended before the server started ({how})"
        hint = "Read the remote stderr below"
        phase = exit.phase
    return DeployError(
        exit.host,
        phase,
        reason,
        hint=hint,
        stderr_tail=exit.stderr,
        exit_status=exit.status,
    )
