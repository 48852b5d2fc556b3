"""The resources of one connection attempt, and how to release all of them.

An attempt collects what it starts (private directory, askpass server, ssh masters,
plumbum machine, deployment) so that failure, cancel and the session's final close
all run the same teardown, which reports anything it could not stop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ..machines.credentials import Secret
from ..machines.record import Machine
from .askpass import AskpassServer, SessionDir
from .logs import MachineLogAdapter
from .ssh import SshCommandError, SshLink

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    """State of connecting one machine; also the session's teardown later."""

    machine: Machine
    log: MachineLogAdapter
    cancel_event: threading.Event = field(default_factory=threading.Event)
    directory: SessionDir | None = None
    askpass: AskpassServer | None = None
    links: list[SshLink] = field(default_factory=list)
    plumbum_machine: Any = None
    deployment: Any = None
    # Secrets the user asked to remember; stored only after authentication worked.
    pending_remember: dict[str, Secret] = field(default_factory=dict)
    tried_stored: set[str] = field(default_factory=set)
    used_stored_secret: bool = False
    prompt_cancelled: bool = False
    closed: bool = False

    def close(self, timeout: float | None = None) -> list[str]:
        """Stop everything the attempt started; return what is still running.

        Blocking: call it from a worker thread. Safe to call more than once.
        """
        if self.closed:
            return []
        self.closed = True
        problems: list[str] = []
        if self.deployment is not None:
            problems += _close_deployment(self.deployment, timeout)
        if self.plumbum_machine is not None:
            try:
                self.plumbum_machine.close()
            except Exception as exc:  # noqa: BLE001 - reported below, teardown goes on
                problems.append(f"closing the ssh shell session failed: {exc}")
        for link in self.links:
            try:
                problems += link.close_master()
            except (OSError, SshCommandError) as exc:
                problems.append(
                    f"stopping the ssh master for {link.machine.host} failed: {exc}"
                )
        if self.askpass is not None:
            self.askpass.stop()
        if self.directory is not None:
            self.directory.remove()
        for problem in problems:
            self.log.warning("cleanup: %s", problem)
        return problems


def _close_deployment(deployment: Any, timeout: float | None) -> list[str]:
    try:
        leftovers = deployment.close(timeout)
    except Exception as exc:  # noqa: BLE001 - TimeoutExpired carries its leftovers
        leftovers = getattr(exc, "leftovers", None)
        if leftovers is None:
            return [f"stopping the remote server failed: {exc}"]
    return [
        item.describe() if hasattr(item, "describe") else str(item)
        for item in leftovers
    ]
