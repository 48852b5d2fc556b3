"""Per-machine logging: records that name the machine first and reach the log pane."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

LineSink = Callable[[str], None]


class MachineLogAdapter(logging.LoggerAdapter):
    """A logger adapter that prefixes the machine name and copies lines to a sink.

    Records go to the wrapped logger as usual ("<machine>: <message>"). Records at
    `sink_level` or above are also formatted and passed to `sink`, which the session
    objects connect to their `log` signal. Messages must never carry a secret: wrap
    secrets in `credentials.Secret`, whose str() is redacted.
    """

    def __init__(
        self,
        logger: logging.Logger,
        machine_name: str,
        sink: LineSink | None = None,
        sink_level: int = logging.INFO,
    ) -> None:
        super().__init__(logger, {"machine": machine_name})
        self.machine_name = machine_name
        self.sink = sink
        self.sink_level = sink_level

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("machine", self.machine_name)
        kwargs["extra"] = extra
        return f"{self.machine_name}: {msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)
        if self.sink is not None and level >= self.sink_level:
            text = str(msg) % args if args else str(msg)
            self.sink(f"{logging.getLevelName(level)} {text}")
