"""Classic mode helpers: the names of ``rpyc.classic``, built on this engine.

Connect functions return a connection whose local service is ``ClassicService`` and
whose peer serves a classic root, with ``conn.modules``, ``conn.eval``,
``conn.execute``, ``conn.namespace``, ``conn.builtins`` and ``conn.teleport`` installed.
They work against this engine's classic server and against stock rpyc 6 classic
servers.

.. warning::
   A classic server gives every client that connects full control of its machine,
   and a classic client gives the server full control of the client's objects,
   because both sides relax their config. Connect only to servers you trust, over
   loopback, a Unix socket, stdio, an SSH tunnel or TLS. ``obtain`` and ``download``
   also trust the peer: ``obtain`` unpickles the peer's bytes, which can run any code.

Standard library only, CPython 3.8+; never imports ``rpyc``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import posixpath
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from rpyc_engine import factory
from rpyc_engine.protocol.errors import ConnectionClosed
from rpyc_engine.services.classic import ClassicService, SlaveService
from rpyc_engine.teleport import TeleportError, export_function, local_python_version

__all__ = [
    "DEFAULT_SERVER_PORT",
    "DEFAULT_SERVER_SSL_PORT",
    "TRANSFER_CHUNK",
    "connect",
    "connect_pipes",
    "connect_stream",
    "connect_subproc",
    "connect_thread",
    "deliver",
    "download",
    "eval",
    "execute",
    "modules",
    "namespace",
    "obtain",
    "redirected_stdio",
    "ssl_connect",
    "teleport_function",
    "unix_connect",
    "upload",
]

_log = logging.getLogger(__name__)

DEFAULT_SERVER_PORT = 18812
DEFAULT_SERVER_SSL_PORT = 18821

#: Bytes per read/write call in ``upload`` and ``download``. Large chunks keep the
#: number of round trips low; every chunk is one request.
TRANSFER_CHUNK = 1024 * 1024

#: Seconds ``close()`` waits for a ``connect_subproc`` child to exit before killing it.
SUBPROCESS_EXIT_TIMEOUT = 10.0


# -- connecting ---------------------------------------------------------------------


def connect_stream(stream: Any) -> Any:
    """Return a classic connection over an open stream (see ``drivers.streams``)."""
    return factory.connect_stream(stream, ClassicService)


def connect(
    host: str,
    port: int = DEFAULT_SERVER_PORT,
    ipv6: bool = False,
    keepalive: bool = False,
) -> Any:
    """Connect to the classic server at ``host:port`` over TCP."""
    return factory.connect(host, port, ClassicService, ipv6=ipv6, keepalive=keepalive)


def unix_connect(path: str) -> Any:
    """Connect to the classic server listening on the Unix socket ``path``."""
    return factory.unix_connect(path, ClassicService)


def ssl_connect(
    host: str, port: int = DEFAULT_SERVER_SSL_PORT, **tls_options: Any
) -> Any:
    """Connect to a classic server over TLS.

    Args:
        host, port: the server's address.
        **tls_options: as for ``rpyc_engine.tls.ssl_connect`` (``ca_certs``,
            ``certfile``, ``keyfile``, ``server_hostname``...).
    """
    from rpyc_engine import tls

    return tls.ssl_connect(host, port, service=ClassicService, **tls_options)


def connect_pipes(input: Any, output: Any) -> Any:
    """Return a classic connection that reads ``input`` and writes ``output``.

    Args:
        input: a readable file object or descriptor (the peer's output).
        output: a writable file object or descriptor (the peer's input).
    """
    return factory.connect_pipes(input, output, ClassicService)


def _default_server_argv() -> List[str]:
    # WARNING keeps the child's lifecycle lines off the parent's stderr.
    return [
        sys.executable,
        "-m",
        "rpyc_engine",
        "serve",
        "--classic",
        "--stdio",
        "--log-level",
        "WARNING",
    ]


def _stop_child(proc: subprocess.Popen) -> int:
    """Return the child's exit status, killing it if it does not exit within 5 s."""
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _child_env() -> Dict[str, str]:
    """Return an environment in which the child can import this copy of the engine."""
    env = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [package_parent] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class _SubprocessClassicService(ClassicService):
    """``ClassicService`` that reaps its server child when the connection ends."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__()
        self._proc = proc

    def on_disconnect(self, conn: Any) -> None:
        # The pipes are closed by now, so the child reads end of input and exits.
        try:
            self._proc.wait(SUBPROCESS_EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            _log.warning(
                "classic server child %d still running %.0f s after close, killing it",
                self._proc.pid,
                SUBPROCESS_EXIT_TIMEOUT,
            )
            self._proc.kill()
            self._proc.wait()
        super().on_disconnect(conn)


def connect_subproc(server_argv: Optional[Sequence[str]] = None) -> Any:
    """Start a classic server as a child process and connect over its stdin/stdout.

    Args:
        server_argv: the command to run; it must serve one classic connection on its
            stdin/stdout. The default runs ``python -m rpyc_engine serve --classic
            --stdio`` with this interpreter.

    Returns:
        The connection; ``conn.proc`` is the ``subprocess.Popen``. Closing the
        connection ends the child's input, so the child exits. ``close`` waits for
        it and kills it after ``SUBPROCESS_EXIT_TIMEOUT`` seconds.
    """
    argv = list(server_argv) if server_argv is not None else _default_server_argv()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env()
    )
    try:
        conn = factory.connect_pipes(
            proc.stdout, proc.stdin, _SubprocessClassicService(proc)
        )
    except ConnectionClosed as exc:
        status = _stop_child(proc)
        raise ConnectionClosed(
            f"the classic server {argv[0]!r} exited with status {status} before the "
            "connection was set up; its error output is on this process's stderr"
        ) from exc
    except BaseException:
        _stop_child(proc)
        raise
    conn.proc = proc  # type: ignore[attr-defined]
    return conn


def connect_thread() -> Any:
    """Serve a classic root on a thread of this process and connect to it.

    Both ends run in this process over a socket pair, which makes this handy in tests.
    The serving thread ends when the returned connection is closed.
    """
    server_end, client_end = socket.socketpair()
    server_conn = factory.connect_socket(server_end, SlaveService)
    thread = threading.Thread(
        target=server_conn.serve_all, name="rpyc-classic-thread", daemon=True
    )
    thread.start()
    try:
        return factory.connect_socket(client_end, ClassicService)
    except BaseException:
        server_conn.close()
        raise


# -- the installed helpers as functions ---------------------------------------------


def modules(conn: Any) -> Any:
    """Return ``conn.modules``, the peer's modules by name."""
    return conn.modules


def eval(conn: Any, text: str) -> Any:  # noqa: A001 - shadows the builtin on purpose
    """Evaluate the expression ``text`` in the peer's classic namespace."""
    return conn.eval(text)


def execute(conn: Any, text: str) -> None:
    """Execute the statements ``text`` in the peer's classic namespace."""
    conn.execute(text)


def namespace(conn: Any) -> Any:
    """Return the peer's classic namespace dict (a proxy)."""
    return conn.namespace


# -- teleportation ------------------------------------------------------------------

_PEER_PROBE = (
    "(tuple(__import__('sys').version_info[:2]),"
    " 'rpyc_engine.services.classic' in __import__('sys').modules,"
    " 'rpyc.core.service' in __import__('sys').modules)"
)


def teleport_function(
    conn: Any, func: Callable[..., Any], globals: Any = None, def_: bool = True
) -> Any:
    """Send ``func`` to the peer as bytecode and return the peer's copy (a proxy).

    The function must not be a closure, and its defaults and constants must be
    brine-dumpable; it may import modules inside its body. Works against this engine's
    classic server and against stock rpyc 6 servers (which rebuild it with
    ``rpyc.utils.teleportation.import_function``).

    Args:
        conn: a classic connection.
        func: the function to send.
        globals: the peer-side namespace the function will use; defaults to
            ``conn.namespace``.
        def_: also bind the function under its name in ``globals``.

    Raises:
        TypeError: ``func`` cannot be exported (closure, non-dumpable default).
        TeleportError: the peer runs another Python minor version, so the bytecode
            would not run there.
    """
    exported = export_function(func)
    version, peer_is_ours, peer_is_stock = conn.eval(_PEER_PROBE)
    local = local_python_version()
    if tuple(version) != local:
        raise TeleportError(
            f"cannot teleport {func.__name__!r}: this side runs CPython "
            f"{local[0]}.{local[1]} and the peer runs CPython "
            f"{version[0]}.{version[1]}, "
            "and bytecode does not travel between minor versions; send source text "
            "with conn.execute() instead"
        )
    if globals is None:
        globals = conn.namespace
    if peer_is_stock and not peer_is_ours:
        importer = conn.modules["rpyc.utils.teleportation"].import_function
        return importer(exported, globals, def_)
    importer = conn.modules["rpyc_engine.teleport"].import_function
    return importer(exported, globals, def_, python_version=local)


# -- moving objects by value --------------------------------------------------------


def obtain(proxy: Any) -> Any:
    """Return a local copy of a remote object, moved by value with pickle.

    The peer pickles the object and this side unpickles the bytes. Unpickling runs
    whatever code the bytes name, so use it only with a peer you trust (the peer must
    also allow pickling, which classic servers do).
    """
    return pickle.loads(pickle.dumps(proxy))


def deliver(conn: Any, obj: Any) -> Any:
    """Copy a local picklable object to the peer by value; return the peer's proxy."""
    return conn.modules["pickle"].loads(pickle.dumps(obj))


# -- file transfer ------------------------------------------------------------------

# Peer functions a transfer uses: attribute name -> (module, function).
_REMOTE_FILE_FUNCTIONS = {
    "open": ("builtins", "open"),
    "sorted": ("builtins", "sorted"),
    "tuple": ("builtins", "tuple"),
    "chmod": ("os", "chmod"),
    "listdir": ("os", "listdir"),
    "makedirs": ("os", "makedirs"),
    "remove": ("os", "remove"),
    "replace": ("os", "replace"),
    "stat": ("os", "stat"),
    "isdir": ("os.path", "isdir"),
    "isfile": ("os.path", "isfile"),
    "join": ("os.path", "join"),
    "sep": ("os.path", "sep"),
}


class _RemoteFiles:
    """The peer's file functions, each fetched once per transfer to save round trips."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        try:
            module, function = _REMOTE_FILE_FUNCTIONS[name]
        except KeyError:
            raise AttributeError(name) from None
        value = getattr(self._conn.modules[module], function)
        setattr(self, name, value)
        return value

    def child(self, directory: str, name: str) -> str:
        """Return the peer's path of entry ``name`` in ``directory``."""
        if self.sep == "/":
            return posixpath.join(directory, name)
        return self.join(directory, name)

    def names(self, directory: str) -> tuple:
        """Return the sorted entry names of the peer's ``directory`` in one tuple."""
        return self.tuple(self.sorted(self.listdir(directory)))

    def part_name(self, path: str) -> str:
        """Return a hidden temporary name next to the peer's ``path``."""
        head, sep, tail = path.rpartition(self.sep)
        return f"{head}{sep}.{tail}.{uuid.uuid4().hex[:12]}.part"


def upload(
    conn: Any, localpath: str, remotepath: str, chunk_size: int = TRANSFER_CHUNK
) -> None:
    """Copy a local file or directory tree to ``remotepath`` on the peer.

    Each file is written to a hidden temporary name next to its target and renamed
    when complete, so a failed transfer never leaves a partial file under the target
    name. The copy gets the source's permission bits (an existing target is replaced,
    not rewritten in place). Directories are created as needed, and symbolic links
    are followed.

    Raises:
        FileNotFoundError: ``localpath`` is neither a file nor a directory.
    """
    remote = _RemoteFiles(conn)
    if os.path.isdir(localpath):
        _upload_dir(remote, localpath, remotepath, chunk_size)
    elif os.path.isfile(localpath):
        _upload_file(remote, localpath, remotepath, chunk_size)
    else:
        raise FileNotFoundError(f"cannot upload {localpath!r}: not a file or directory")


def _upload_dir(
    remote: _RemoteFiles, localpath: str, remotepath: str, chunk_size: int
) -> None:
    remote.makedirs(remotepath, exist_ok=True)
    for name in sorted(os.listdir(localpath)):
        source = os.path.join(localpath, name)
        target = remote.child(remotepath, name)
        if os.path.isdir(source):
            _upload_dir(remote, source, target, chunk_size)
        elif os.path.isfile(source):
            _upload_file(remote, source, target, chunk_size)


def _upload_file(
    remote: _RemoteFiles, localpath: str, remotepath: str, chunk_size: int
) -> None:
    part = remote.part_name(remotepath)
    remote_file = remote.open(part, "wb")
    try:
        write = remote_file.write
        with open(localpath, "rb") as local_file:
            while True:
                chunk = local_file.read(chunk_size)
                if not chunk:
                    break
                write(chunk)
        remote_file.close()
        remote.chmod(part, stat.S_IMODE(os.stat(localpath).st_mode))
        remote.replace(part, remotepath)
    except BaseException:
        with contextlib.suppress(Exception):
            remote_file.close()
        with contextlib.suppress(Exception):
            remote.remove(part)
        raise


def download(
    conn: Any, remotepath: str, localpath: str, chunk_size: int = TRANSFER_CHUNK
) -> None:
    """Copy a file or directory tree from the peer's ``remotepath`` to ``localpath``.

    Files are written to a hidden temporary name and renamed when complete, and get
    the remote file's permission bits, like ``upload``. The peer decides what the
    files contain, so treat them as coming from the peer.

    Raises:
        FileNotFoundError: ``remotepath`` is neither a file nor a directory on the peer.
    """
    remote = _RemoteFiles(conn)
    if remote.isdir(remotepath):
        _download_dir(remote, remotepath, localpath, chunk_size)
    elif remote.isfile(remotepath):
        _download_file(remote, remotepath, localpath, chunk_size)
    else:
        raise FileNotFoundError(
            f"cannot download {remotepath!r}: not a file or directory on the peer"
        )


def _download_dir(
    remote: _RemoteFiles, remotepath: str, localpath: str, chunk_size: int
) -> None:
    os.makedirs(localpath, exist_ok=True)
    for name in remote.names(remotepath):
        source = remote.child(remotepath, name)
        target = os.path.join(localpath, name)
        if remote.isdir(source):
            _download_dir(remote, source, target, chunk_size)
        elif remote.isfile(source):
            _download_file(remote, source, target, chunk_size)


def _download_file(
    remote: _RemoteFiles, remotepath: str, localpath: str, chunk_size: int
) -> None:
    head, tail = os.path.split(os.path.abspath(localpath))
    fd, part = tempfile.mkstemp(prefix=f".{tail}.", suffix=".part", dir=head)
    try:
        with os.fdopen(fd, "wb") as local_file:
            remote_file = remote.open(remotepath, "rb")
            try:
                read = remote_file.read
                while True:
                    chunk = read(chunk_size)
                    if not chunk:
                        break
                    local_file.write(chunk)
            finally:
                remote_file.close()
            os.fchmod(
                local_file.fileno(), stat.S_IMODE(remote.stat(remotepath).st_mode)
            )
        os.replace(part, localpath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise


# -- standard streams ---------------------------------------------------------------


@contextlib.contextmanager
def redirected_stdio(conn: Any) -> Iterator[None]:
    """Point the peer's ``sys.stdin/stdout/stderr`` at this process's for a while."""
    remote_sys = conn.modules.sys
    saved = (remote_sys.stdin, remote_sys.stdout, remote_sys.stderr)
    try:
        remote_sys.stdin = sys.stdin
        remote_sys.stdout = sys.stdout
        remote_sys.stderr = sys.stderr
        yield
    finally:
        remote_sys.stdin, remote_sys.stdout, remote_sys.stderr = saved
