"""Asyncio front end: connect, call and close without blocking the event loop.

Works on any asyncio loop, including qasync's ``QEventLoop``::

    conn = await aio.connect("127.0.0.1", 18812)
    root = await aio.root(conn)
    total = await aio.callattr(root, "add", 6, 7)   # one CALLATTR round trip
    add = await aio.getattr(root, "add")
    total = await aio.call(add, 6, 7)
    total = await async_(add)(6, 7)                 # an AsyncResult is awaitable too
    await aio.close(conn)

The connection's I/O runs on the loop and the peer's requests run on a worker thread
(see ``rpyc_engine.drivers.asyncio``). Other threads may also use the netrefs obtained
here synchronously. On the loop's own thread a synchronous call raises ``RuntimeError``.

Client-side only (CPython 3.10+); not part of the server bundle.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import ssl as _ssl
import sys
from collections.abc import Sequence
from typing import Any

from rpyc_engine import tls
from rpyc_engine.async_result import AsyncResult, async_
from rpyc_engine.drivers.asyncio import AsyncioDriver
from rpyc_engine.netref import BaseNetref, get_conn
from rpyc_engine.protocol.errors import ConnectionClosed
from rpyc_engine.protocol.wire import HANDLE_CALLATTR, HANDLE_GETATTR, HANDLE_GETROOT

__all__ = [
    "call",
    "callattr",
    "close",
    "connect",
    "connect_pipes",
    "connect_stream",
    "connect_subprocess",
    "getattr",
    "root",
]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for TCP connect plus the TLS handshake
SUBPROCESS_EXIT_TIMEOUT = (
    5.0  # seconds to wait for a subprocess after closing its stdin
)


def _service_instance(service: Any) -> Any:
    if service is None:
        from rpyc_engine.services.base import VoidService

        return VoidService()
    if isinstance(service, type):
        return service()
    return service


async def connect_stream(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    service: Any = None,
    config: Any = None,
) -> Any:
    """Make a connection over an open asyncio stream pair.

    Args:
        reader, writer: the stream; the connection owns it from now on.
        service: the local service class or instance (default ``VoidService``).
        config: a ``Config``, a dict of settings or ``None``.

    Returns:
        The ``Connection``; its ``on_connect`` has run on the worker thread.
    """
    from rpyc_engine.connection import Connection

    driver = AsyncioDriver(reader, writer)
    instance = _service_instance(service)
    future = driver.submit(lambda: Connection(instance, driver, config))
    try:
        return await asyncio.wrap_future(future)
    except BaseException:
        driver.close()
        raise


async def connect(
    host: str,
    port: int,
    service: Any = None,
    config: Any = None,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> Any:
    """Connect over TCP, or over TLS when ``ssl`` is given.

    Args:
        host, port: the server's address.
        service: the local service class or instance (default ``VoidService``).
        config: a ``Config``, a dict of settings or ``None``.
        ssl: ``True`` for TLS verified against the system CA store, or a context made
            with ``rpyc_engine.tls.client_context`` (client certificate, own CA file).
        server_hostname: the name to check the server's certificate against
            (default ``host``).
        timeout: seconds for the TCP connect and the TLS handshake together.

    Raises:
        TLSError: the TLS handshake or the first round trip failed (``check``
            names the failed check).
        OSError: the TCP connection failed.
        TimeoutError: no connection within ``timeout`` seconds.
    """
    if ssl is True:
        ssl = tls.client_context()
    if not ssl:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout
        )
        return await connect_stream(reader, writer, service, config)
    name = server_hostname if server_hostname is not None else host
    address = f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl, server_hostname=name),
            timeout,
        )
    except (_ssl.SSLError, ConnectionResetError) as exc:
        raise tls.explain_client_error(exc, address, name) from exc
    conn = await connect_stream(reader, writer, service, config)
    await _probe_tls(conn, address, name, timeout)
    return conn


async def _probe_tls(conn: Any, address: str, name: str, timeout: float) -> None:
    """Make one PING round trip, so that a TLS 1.3 certificate rejection shows here."""
    from rpyc_engine.protocol.wire import HANDLE_PING

    try:
        result = conn.async_request(HANDLE_PING, "tls-probe")
        result.set_expiry(timeout)
        await result
    except Exception as exc:
        failure = tls.find_tls_failure(exc) or _lost_reason(conn)
        await close(conn)
        if failure is None:
            raise
        raise tls.explain_client_error(failure, address, name) from exc


def _lost_reason(conn: Any) -> BaseException | None:
    return builtins.getattr(conn._driver, "lost_reason", None)


async def connect_subprocess(
    argv: Sequence[str] | None = None,
    service: Any = None,
    config: Any = None,
    **popen_kwargs: Any,
) -> Any:
    """Start a server process and connect to it over its stdin and stdout.

    Args:
        argv: the command; default runs ``python -m rpyc_engine serve --stdio`` with
            this interpreter.
        service: the local service class or instance (default ``VoidService``).
        config: a ``Config``, a dict of settings or ``None``.
        **popen_kwargs: passed to ``asyncio.create_subprocess_exec`` (``env``, ``cwd``).

    Returns:
        The connection; ``aio.close(conn)`` closes it and waits for the process.
    """
    if argv is None:
        argv = [sys.executable, "-m", "rpyc_engine", "serve", "--stdio"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        **popen_kwargs,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        conn = await connect_stream(proc.stdout, proc.stdin, service, config)
    except BaseException:
        await _stop_process(proc)
        raise
    conn._driver.process = proc
    return conn


async def connect_pipes(
    read_file: Any, write_file: Any, service: Any = None, config: Any = None
) -> Any:
    """Connect over two pipe file objects, such as a child's stdout and stdin."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), read_file
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, write_file
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return await connect_stream(reader, writer, service, config)


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(proc.wait(), SUBPROCESS_EXIT_TIMEOUT)
    except asyncio.TimeoutError:
        logger.warning("server process %d did not exit after EOF; killing it", proc.pid)
        proc.kill()
        await proc.wait()


async def close(conn: Any) -> None:
    """Close ``conn`` (sends CLOSE) and wait until its worker thread has stopped.

    For a connection from ``connect_subprocess`` this also waits for the process.
    """
    driver = conn._driver
    if not isinstance(driver, AsyncioDriver):
        await asyncio.get_running_loop().run_in_executor(None, conn.close)
        return
    try:
        await asyncio.wrap_future(driver.submit(conn.close))
    except ConnectionClosed:
        pass  # the stream ended first; the worker has cleaned up or is doing so
    await driver.wait_finished()
    proc = builtins.getattr(driver, "process", None)
    if proc is not None:
        await _stop_process(proc)


def _default_timeout(conn: Any) -> float | None:
    return conn.config.sync_request_timeout


async def _await_with_default_timeout(conn: Any, result: AsyncResult) -> Any:
    if result._deadline is None:
        result.set_expiry(_default_timeout(conn))
    return await result


async def call(proxy: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a remote callable and await its result.

    Waits at most the connection's ``sync_request_timeout``; use
    ``await timed(proxy, seconds)(...)`` for another limit.

    Raises:
        AsyncResultTimeout: no reply in time.
        ConnectionClosed: the connection closed first.
        Exception: the exception the remote call raised.
    """
    result = async_(proxy)(*args, **kwargs)
    return await _await_with_default_timeout(get_conn(proxy), result)


async def callattr(proxy: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the method ``name`` of a remote object in one round trip (CALLATTR).

    ``await aio.callattr(root, "add", 6, 7)`` is ``root.add(6, 7)`` without blocking the
    loop; on the loop thread ``root.add`` alone would be a synchronous GETATTR.
    """
    conn = _conn_of(proxy, "callattr")
    result = conn.async_request(
        HANDLE_CALLATTR, proxy, name, args, tuple(kwargs.items())
    )
    return await _await_with_default_timeout(conn, result)


def _conn_of(proxy: Any, caller: str) -> Any:
    if not isinstance(proxy, BaseNetref):
        raise TypeError(
            f"aio.{caller} needs a proxy of a remote object, not {type(proxy).__name__}"
        )
    return get_conn(proxy)


async def getattr(proxy: Any, name: str) -> Any:  # noqa: A001 - mirrors builtins.getattr
    """Read the attribute ``name`` of a remote object without blocking the loop."""
    conn = _conn_of(proxy, "getattr")
    result = conn.async_request(HANDLE_GETATTR, proxy, name)
    return await _await_with_default_timeout(conn, result)


async def root(conn: Any) -> Any:
    """Fetch the peer's root object (GETROOT, then cached) without blocking the loop."""
    cached = conn._remote_root
    if cached is not None:
        return cached
    value = await _await_with_default_timeout(conn, conn.async_request(HANDLE_GETROOT))
    if conn._remote_root is None:
        conn._remote_root = value
    return conn._remote_root
