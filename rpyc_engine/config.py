"""Per-connection settings: a frozen dataclass in place of rpyc's config dict.

Every key of stock rpyc 6.0.2's ``DEFAULT_CONFIG`` that has an effect on Python 3 is a
field here, with the same name and default, plus two of ours (``max_frame_size`` and
``compression_threshold``). A plain dict is accepted wherever stock accepts ``config={}``;
an unknown key raises ``TypeError`` so that a mistyped key never passes silently.

Stock services read settings as ``conn._config["credentials"]``; ``Config.__getitem__``
supports that. Settings are changed by replacing the whole object:
``conn._config = conn._config.replace(allow_all_attrs=True)``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping, Optional, Tuple, Union

from rpyc_engine.protocol.wire import (
    COMPRESSION_THRESHOLD,
    DEFAULT_MAX_FRAME_SIZE,
    SAFE_ATTRS,
)

__all__ = ["Config", "ConfigLike"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one side of one connection.

    The answering side's settings decide what the peer may do with its objects: the
    server's ``allow_*`` fields govern what clients may reach, and the client's govern what
    the server may do with objects the client passed in (callbacks).
    """

    # Attribute access (see rpyc_engine.handlers for the rule that reads these).
    allow_safe_attrs: bool = True
    allow_exposed_attrs: bool = True
    allow_public_attrs: bool = False
    allow_all_attrs: bool = False
    safe_attrs: frozenset = SAFE_ATTRS
    exposed_prefix: str = "exposed_"
    allow_getattr: bool = True
    allow_setattr: bool = False
    allow_delattr: bool = False
    allow_pickle: bool = False

    # Exceptions: what this side sends, and what it rebuilds from the peer's.
    include_local_traceback: bool = True
    include_local_version: bool = True
    instantiate_custom_exceptions: bool = False
    import_custom_exceptions: bool = False
    propagate_SystemExit_locally: bool = False
    propagate_KeyboardInterrupt_locally: bool = True
    log_exceptions: bool = True
    # Accepted because stock classic code passes it; it only mattered on Python 2.
    instantiate_oldstyle_exceptions: bool = False

    # Connection identity and lifecycle.
    sync_request_timeout: Optional[float] = 30
    connid: Optional[str] = None
    credentials: Any = None
    endpoints: Optional[Tuple[Any, Any]] = None
    logger: Optional[logging.Logger] = None
    before_closed: Optional[Callable[[Any], None]] = None
    close_catchall: bool = False

    # Ours: limits of the frame layer.
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    compression_threshold: int = COMPRESSION_THRESHOLD

    def __post_init__(self) -> None:
        if not isinstance(self.safe_attrs, frozenset):
            object.__setattr__(self, "safe_attrs", frozenset(self.safe_attrs))
        if not isinstance(self.exposed_prefix, str):
            raise TypeError(
                f"exposed_prefix must be a str, not {type(self.exposed_prefix).__name__}"
            )
        timeout = self.sync_request_timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or timeout < 0
        ):
            raise ValueError(
                f"sync_request_timeout must be a number of seconds >= 0 or None, "
                f"not {timeout!r}"
            )
        for name in ("max_frame_size", "compression_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, not {value!r}")

    @classmethod
    def keys(cls) -> Tuple[str, ...]:
        """Return the names of every setting, in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def coerce(cls, value: ConfigLike = None, **overrides: Any) -> Config:
        """Build a ``Config`` from ``None``, a ``Config`` or a dict, then apply ``overrides``.

        Raises:
            TypeError: a key is not a setting name, or ``value`` has another type.
        """
        if value is None:
            base = cls()
        elif isinstance(value, Config):
            base = value
        elif isinstance(value, Mapping):
            _check_keys(value)
            base = cls(**value)
        else:
            raise TypeError(
                f"config must be a Config, a dict or None, not {type(value).__name__}"
            )
        return base.replace(**overrides) if overrides else base

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied; unknown names raise ``TypeError``."""
        _check_keys(changes)
        return dataclasses.replace(self, **changes)

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(
                f"{key!r} is not a connection setting; valid: {_valid_list()}"
            )
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _KEYS

    def get(self, key: str, default: Any = None) -> Any:
        """Return setting ``key``, or ``default`` when no setting has that name."""
        return getattr(self, key, default) if key in _KEYS else default

    def as_dict(self) -> dict:
        """Return the settings as a new dict (the shape stock rpyc's config has)."""
        return {name: getattr(self, name) for name in _KEYS}


ConfigLike = Union[Config, Mapping[str, Any], None]

_KEYS = frozenset(Config.keys())


def _valid_list() -> str:
    return ", ".join(Config.keys())


def _check_keys(mapping: Mapping[str, Any]) -> None:
    unknown = [key for key in mapping if key not in _KEYS]
    if unknown:
        raise TypeError(
            f"unknown connection setting(s) {', '.join(map(repr, unknown))}; "
            f"valid settings: {_valid_list()}"
        )
