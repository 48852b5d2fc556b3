"""MultiServerDeployment: deploy to several machines in parallel, one result per host.

Each machine gets its own `DeployedServer`, built on its own thread, so N hosts take about
as long as the slowest one (stock rpyc deploys them one after another). A host that fails
does not stop the others, and its slot contains a `HostFailure` instead of a server.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from rpyc_engine.deploy.deployed_server import DeployedServer
from rpyc_engine.deploy.errors import CLOSING, DeployError, Leftover, TimeoutExpired
from rpyc_engine.deploy.transport import machine_alias

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostFailure:
    """The failure of one host of a `MultiServerDeployment`: which host, phase and error.

    Attributes:
        host: alias of the machine.
        phase: deploy phase that failed (``"finding-python"``, ``"uploading"``,
            ``"starting"``, ``"handshake"``), or ``"unexpected"`` for a non-deploy error.
        error: the exception raised by `DeployedServer`.
    """

    host: str
    phase: str
    error: BaseException

    def __str__(self) -> str:
        return str(self.error)


Slot = Union[DeployedServer, HostFailure]


class MultiServerDeployment:
    """Deploy the engine's server to every machine in ``machines`` at once.

    Results keep the order of ``machines``. Indexing and iteration yield, per host, a
    `DeployedServer` or a `HostFailure` (check with ``isinstance``); ``servers`` and
    ``failures`` list each kind, and ``len()`` counts every host. ``connect_all()`` and
    ``classic_connect_all()`` return one connection per host, with the `HostFailure` in
    the failed slots. Nothing is raised for failed hosts.

    Args:
        machines: plumbum machines (``local``, ``SshMachine``, ``ParamikoMachine``).
        **kwargs: passed to every `DeployedServer` (``service``, ``python_executable``,
            ``connect_timeout``, ``heartbeat``, ``cancel_event`` …). A ``progress``
            callback is called as ``progress(host, phase, fraction, detail)``, from the
            deploying threads.
    """

    def __init__(self, machines: Sequence[Any], **kwargs: Any) -> None:
        self._slots: List[Optional[Slot]] = [None] * len(machines)
        progress = kwargs.pop("progress", None)
        threads = []
        for index, machine in enumerate(machines):
            thread = threading.Thread(
                target=self._deploy_one,
                args=(index, machine, progress, kwargs),
                name=f"multi-deploy-{index}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        failed = [slot for slot in self._slots if isinstance(slot, HostFailure)]
        logger.info("deployed to %d of %d hosts", len(self) - len(failed), len(self))

    def _deploy_one(
        self, index: int, machine: Any, progress: Any, kwargs: dict
    ) -> None:
        alias = kwargs.get("alias") or machine_alias(machine)
        options = dict(kwargs, alias=alias)
        if progress is not None:
            options["progress"] = lambda phase, fraction, detail: progress(
                alias, phase, fraction, detail
            )
        try:
            self._slots[index] = DeployedServer(machine, **options)
        except DeployError as exc:
            logger.warning("%s: deploy failed: %s", alias, exc)
            self._slots[index] = HostFailure(alias, exc.phase, exc)
        except Exception as exc:
            # A bug or a bad machine object must not stop the other hosts.
            logger.exception("%s: deploy failed unexpectedly", alias)
            self._slots[index] = HostFailure(alias, "unexpected", exc)

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[Slot]:
        return iter(self._slots)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Slot:
        return self._slots[index]  # type: ignore[return-value]

    @property
    def servers(self) -> List[DeployedServer]:
        """The hosts that deployed, in machine order."""
        return [slot for slot in self._slots if isinstance(slot, DeployedServer)]

    @property
    def failures(self) -> List[HostFailure]:
        """The hosts that failed, in machine order."""
        return [slot for slot in self._slots if isinstance(slot, HostFailure)]

    def connect_all(self, service: Any = None, config: Any = None) -> List[Any]:
        """Return one new connection per host, or its `HostFailure`, in machine order."""
        return [
            slot.connect(service, config) if isinstance(slot, DeployedServer) else slot
            for slot in self._slots
        ]

    def classic_connect_all(self) -> List[Any]:
        """Return one classic connection per host, or its `HostFailure`."""
        return [
            slot.classic_connect() if isinstance(slot, DeployedServer) else slot
            for slot in self._slots
        ]

    def close(self, timeout: Optional[float] = None) -> Tuple[Leftover, ...]:
        """Close every deployment in parallel; return everything left behind.

        Raises:
            TimeoutExpired: ``timeout`` was given and some servers did not exit in time;
                its ``leftovers`` covers every host. The other hosts are closed anyway.
        """
        results: List[Any] = [()] * len(self._slots)

        def close_one(index: int, server: DeployedServer) -> None:
            try:
                results[index] = server.close(timeout)
            except TimeoutExpired as exc:
                results[index] = exc

        threads = [
            threading.Thread(target=close_one, args=(index, slot), daemon=True)
            for index, slot in enumerate(self._slots)
            if isinstance(slot, DeployedServer)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        leftovers: List[Leftover] = []
        timeouts = [result for result in results if isinstance(result, TimeoutExpired)]
        for result in results:
            leftovers.extend(
                result.leftovers if isinstance(result, TimeoutExpired) else result
            )
        if timeouts:
            raise TimeoutExpired(
                ", ".join(error.host for error in timeouts),
                CLOSING,
                f"{len(timeouts)} server(s) did not exit within {timeout} s",
                leftovers=leftovers,
            )
        return tuple(leftovers)

    def __enter__(self) -> MultiServerDeployment:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
