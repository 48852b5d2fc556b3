"""Functions that open a stream and wrap it in a ``Connection`` with the threaded driver.

The names and defaults follow stock rpyc's ``rpyc.utils.factory`` (``connect``,
``unix_connect``, ``connect_stream``, ``connect_pipes``, ``connect_stdpipes``,
``connect_channel``). Nothing is sent on connect: the peer's root is fetched on the first
access to ``conn.root``.
"""

from __future__ import annotations

import socket
from typing import Any, Union

from rpyc_engine.config import ConfigLike
from rpyc_engine.connection import Connection
from rpyc_engine.drivers.streams import ChannelStream, PipeStream, SocketStream
from rpyc_engine.drivers.threaded import ThreadedDriver
from rpyc_engine.services.base import VoidService

__all__ = [
    "connect",
    "connect_channel",
    "connect_pipes",
    "connect_socket",
    "connect_stdpipes",
    "connect_stream",
    "unix_connect",
]


def _service_instance(service: Any) -> Any:
    return service() if isinstance(service, type) else service


def connect_stream(
    stream: Any, service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Create a connection over an open stream (``rpyc_engine.drivers.streams``).

    Args:
        stream: a ``SocketStream``, ``PipeStream``, ``ChannelStream`` or an object with the
            same methods.
        service: the local service, as a class (instantiated here) or an instance.
        config: settings for this side (``Config``, dict or ``None``).
    """
    return Connection(_service_instance(service), ThreadedDriver(stream), config)


def connect(
    host: str,
    port: int,
    service: Any = VoidService,
    config: ConfigLike = None,
    ipv6: bool = False,
    keepalive: Union[bool, int] = False,
) -> Connection:
    """Connect to an RPyC server over TCP (TCP_NODELAY is set)."""
    stream = SocketStream.connect(host, port, ipv6=ipv6, keepalive=keepalive)
    return connect_stream(stream, service, config)


def unix_connect(
    path: str, service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Connect to an RPyC server listening on the Unix domain socket ``path``."""
    return connect_stream(SocketStream.unix_connect(path), service, config)


def connect_socket(
    sock: socket.socket, service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Create a connection over an already connected socket (TCP, Unix or TLS)."""
    return connect_stream(SocketStream(sock), service, config)


def connect_pipes(
    input: Any, output: Any, service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Create a connection that reads ``input`` and writes ``output`` (fds or files)."""
    return connect_stream(PipeStream(input, output), service, config)


def connect_stdpipes(
    service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Create a connection over this process's stdin and stdout (see ``PipeStream.from_std``)."""
    return connect_stream(PipeStream.from_std(), service, config)


def connect_channel(
    channel: Any, service: Any = VoidService, config: ConfigLike = None
) -> Connection:
    """Create a connection over a channel object with ``recv``/``sendall``/``close``,
    such as a paramiko channel."""
    return connect_stream(ChannelStream(channel), service, config)
