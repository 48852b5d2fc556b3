"""rpyc_engine: an RPC engine that implements the RPyC model and speaks the RPyC 6 protocol.

Stock ``rpyc`` 6.0.x clients and servers interoperate with it in both directions. The
names here mirror stock's top-level API::

    import rpyc_engine
    conn = rpyc_engine.connect("localhost", 18861)
    print(conn.root.get_service_name())

Names from optional parts (classic mode, servers, TLS, zero-deploy) are imported on first
use, so ``import rpyc_engine`` works even when one of those modules is missing or broken;
the error shows up when that name is used.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from rpyc_engine.async_result import AsyncResult, async_
from rpyc_engine.config import Config
from rpyc_engine.connection import Connection
from rpyc_engine.drivers.threaded import BgServingThread
from rpyc_engine.factory import (
    connect,
    connect_channel,
    connect_pipes,
    connect_socket,
    connect_stdpipes,
    connect_stream,
    unix_connect,
)
from rpyc_engine.netref import BaseNetref, buffiter
from rpyc_engine.protocol.errors import (
    AsyncResultTimeout,
    AuthenticationError,
    BrineError,
    ConnectionClosed,
    FrameTooLarge,
    FramingError,
    ProtocolError,
    RPyCError,
)
from rpyc_engine.protocol.vinegar import GenericException
from rpyc_engine.services.base import Service, VoidService, exposed, restricted

# Names provided by modules other parts of the project own, imported lazily:
# name -> (module, attribute); attribute None means the module itself.
_LAZY: Dict[str, Tuple[str, Any]] = {
    "classic": ("rpyc_engine.classic", None),
    "ClassicService": ("rpyc_engine.services.classic", "ClassicService"),
    "SlaveService": ("rpyc_engine.services.classic", "SlaveService"),
    "MasterService": ("rpyc_engine.services.classic", "MasterService"),
    "ThreadedServer": ("rpyc_engine.server", "ThreadedServer"),
    "ThreadPoolServer": ("rpyc_engine.server", "ThreadPoolServer"),
    "ssl_connect": ("rpyc_engine.tls", "ssl_connect"),
    "SSLAuthenticator": ("rpyc_engine.tls", "SSLAuthenticator"),
    "TLSError": ("rpyc_engine.tls", "TLSError"),
    "aio": ("rpyc_engine.aio", None),
    "timed": ("rpyc_engine.async_result", "timed"),
    "DeployedServer": ("rpyc_engine.deploy", "DeployedServer"),
    "MultiServerDeployment": ("rpyc_engine.deploy", "MultiServerDeployment"),
    "DeployError": ("rpyc_engine.deploy.errors", "DeployError"),
    "TimeoutExpired": ("rpyc_engine.deploy.errors", "TimeoutExpired"),
}

__all__ = [
    "AsyncResult",
    "AsyncResultTimeout",
    "AuthenticationError",
    "BaseNetref",
    "BgServingThread",
    "BrineError",
    "Config",
    "Connection",
    "ConnectionClosed",
    "FrameTooLarge",
    "FramingError",
    "GenericException",
    "ProtocolError",
    "RPyCError",
    "Service",
    "VoidService",
    "async_",
    "buffiter",
    "connect",
    "connect_channel",
    "connect_pipes",
    "connect_socket",
    "connect_stdpipes",
    "connect_stream",
    "exposed",
    "restricted",
    "unix_connect",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(
            f"module 'rpyc_engine' has no attribute {name!r}"
        ) from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
