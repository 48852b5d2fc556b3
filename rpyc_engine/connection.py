"""The RPyC object model of one connection: exports, proxies, boxing and dispatch.

A ``Connection`` turns Python objects into RPyC 6 messages and back. It keeps

- the *export table*: objects this side sent by reference, with the number of references
  the peer has not released yet (DEL subtracts);
- the *proxy cache*: one live proxy per id_pack the peer sent, weakly held, with the number
  of times the peer sent it. When a proxy dies, that count goes back in one DEL request;
- the *pending table*: an ``AsyncResult`` per request still awaiting its reply, keyed by
  sequence number.

It never touches a socket. Frames go out through ``driver.send`` and come in through
``dispatch_payload``, called by the driver (see ``rpyc_engine.drivers.base``). Handlers and
the attribute access rule live in ``rpyc_engine.handlers``; proxy classes in
``rpyc_engine.netref``.

Garbage collection never does I/O here: a dying proxy only appends its weak reference to a
deque (``_releases``), and the connection turns that deque into DEL frames the next time it
sends anything or when the driver calls ``flush_releases``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import weakref
from typing import Any, Deque, Dict, Optional, Set, Tuple

from rpyc_engine import handlers, netref
from rpyc_engine.async_result import AsyncResult
from rpyc_engine.config import Config, ConfigLike
from rpyc_engine.protocol import vinegar
from rpyc_engine.protocol.brine import Encoded, dump, dumpable
from rpyc_engine.protocol.errors import (
    AsyncResultTimeout,
    ConnectionClosed,
    ProtocolError,
)
from rpyc_engine.protocol.framing import encode_frame
from rpyc_engine.protocol.messages import (
    decode_message,
    encode_exception,
    encode_reply,
    encode_request,
)
from rpyc_engine.protocol.wire import (
    HANDLE_CLOSE,
    HANDLE_DEL,
    HANDLE_GETROOT,
    HANDLE_INSPECT,
    HANDLE_PING,
    LABEL_LOCAL_REF,
    LABEL_REMOTE_REF,
    LABEL_TUPLE,
    LABEL_VALUE,
    MSG_EXCEPTION,
    MSG_REPLY,
)

__all__ = ["Connection", "ExportTable"]

logger = logging.getLogger(__name__)

_connection_numbers = itertools.count(1)
# Types that are always sent by value: checked before brine's full dumpable test.
_SCALARS = frozenset(
    {int, str, float, bool, bytes, complex, type(None), type(NotImplemented), type(...)}
)
_BaseNetref = netref.BaseNetref
_HANDLERS = handlers.HANDLERS
_ARITY = handlers.ARITY
_get_conn = netref.get_conn
_get_id_pack = netref.get_id_pack
_PING_DATA = "abcdefghijklmnopqrstuvwxyz" * 20
# Seconds close() waits for the peer to close its end after CLOSE. Stock rpyc 6.0.2 and
# this engine close at once when they read CLOSE.
_CLOSE_LINGER = 1.0


# Boxed references, encoded once per id_pack (see _encoded_ref).
_REF_CODES_MAX = 4096
_BOXED_EMPTY_TUPLE = Encoded(dump((LABEL_VALUE, ())))


def _encoded_ref(codes: Dict[tuple, Encoded], label: int, id_pack: tuple) -> Encoded:
    """Encode ``(label, id_pack)`` once and keep it in ``codes``.

    A program that calls the same proxy again and again sends the same reference each
    time. id_packs are exact ``(str, int, int)`` tuples (checked on receipt, built here
    on export), so equal keys always have equal encodings.
    """
    if len(codes) >= _REF_CODES_MAX:
        codes.clear()
    boxed = codes[id_pack] = Encoded(dump((label, id_pack)))
    return boxed


class ExportTable:
    """Objects sent by reference, keyed by id_pack, with unreleased reference counts.

    The table holds strong references, so an exported object stays alive (and its ``id()``
    unique) until the peer has released every reference it received.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[tuple, list] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, id_pack: tuple, obj: Any) -> None:
        """Count one more reference to ``obj`` held by the peer."""
        with self._lock:
            entry = self._entries.get(id_pack)
            if entry is None:
                self._entries[id_pack] = [obj, 1]
            else:
                entry[1] += 1

    def get(self, id_pack: tuple) -> Any:
        """Return the exported object; raise ``KeyError(id_pack)`` when it is unknown."""
        return self._entries[id_pack][0]

    def release(self, id_pack: tuple, count: int) -> None:
        """Subtract ``count`` references; drop the entry at zero. ``KeyError`` if unknown."""
        with self._lock:
            entry = self._entries[id_pack]
            entry[1] -= count
            if entry[1] <= 0:
                del self._entries[id_pack]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _ProxyRef(weakref.ref):
    """Weak reference to a proxy, carrying its id_pack and how often the peer sent it."""

    __slots__ = ("id_pack", "count")
    id_pack: tuple
    count: int

    def __new__(cls, proxy: Any, callback: Any, id_pack: tuple) -> _ProxyRef:
        self = super().__new__(cls, proxy, callback)
        self.id_pack = id_pack
        self.count = 1
        return self

    def __init__(self, proxy: Any, callback: Any, id_pack: tuple) -> None:
        super().__init__(proxy, callback)  # type: ignore[call-arg]


class Connection:
    """One side of an RPyC 6 connection.

    Args:
        service: the local root object the peer reaches with GETROOT (a ``Service``
            instance). Its ``on_connect(conn)`` runs at the end of the constructor and its
            ``on_disconnect(conn)`` when the connection closes.
        driver: the I/O driver that owns the stream (``rpyc_engine.drivers``).
        config: a ``Config``, a dict of settings or ``None`` for the defaults.
    """

    def __init__(self, service: Any, driver: Any, config: ConfigLike = None) -> None:
        cfg = Config.coerce(config)
        if cfg.connid is None:
            cfg = cfg.replace(connid=f"conn{next(_connection_numbers)}")
        self._config = cfg
        self._log = cfg.logger or logger
        self._local_root = service
        self._remote_root: Any = None
        self._driver = driver
        self._seq = itertools.count()
        self._pending: Dict[int, AsyncResult] = {}
        self._ignored_replies: Set[int] = set()
        self._exports = ExportTable()
        self._proxies: Dict[tuple, _ProxyRef] = {}
        self._proxy_lock = threading.Lock()
        self._class_cache: Dict[tuple, type] = {}
        self._local_ref_codes: Dict[tuple, Encoded] = {}
        self._remote_ref_codes: Dict[tuple, Encoded] = {}
        self._releases: Deque[_ProxyRef] = collections.deque()
        # Frames of DEL replies held back until the next send (see Driver.backlog).
        self._held_replies: Deque[bytes] = collections.deque()
        self._close_lock = threading.Lock()
        self._closed = False
        # Set once on_connect returned: on_disconnect runs only after a successful connect.
        self._connected = False
        driver.bind(self)
        on_connect = getattr(service, "on_connect", None)
        if on_connect is not None:
            try:
                on_connect(self)
            except BaseException:
                self._cleanup("on_connect raised")
                raise
        self._connected = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<rpyc_engine.Connection {self._config.connid} {state}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ properties

    @property
    def config(self) -> Config:
        """The settings of this side of the connection."""
        return self._config

    @property
    def connid(self) -> str:
        """The connection's label in logs (``config.connid``, ``conn<N>`` by default)."""
        return self._config.connid  # type: ignore[return-value]

    @property
    def closed(self) -> bool:
        """True once the connection is closed, by either side."""
        return self._closed

    @property
    def root(self) -> Any:
        """The peer's root object (its service); fetched with GETROOT once, then cached."""
        root = self._remote_root
        if root is None:
            root = self._remote_root = self.sync_request(HANDLE_GETROOT)
        return root

    def update_config(self, **changes: Any) -> None:
        """Replace settings of this side, e.g. ``update_config(allow_all_attrs=True)``."""
        self._config = self._config.replace(**changes)

    def fileno(self) -> int:
        """Return the file descriptor the driver reads from (for ``select``)."""
        return self._driver.fileno()

    # ------------------------------------------------------------------ requests

    def sync_request(
        self, handler: int, *args: Any, timeout: Optional[float] = None
    ) -> Any:
        """Send a request, wait for its reply and return the unboxed value.

        Args:
            handler: a ``wire.HANDLE_*`` code.
            *args: the handler's arguments, boxed here.
            timeout: seconds to wait; ``None`` uses ``config.sync_request_timeout``.

        Raises:
            AsyncResultTimeout: no reply in time (the late reply is dropped).
            ConnectionClosed: the connection closed first.
            Exception: the peer's exception, rebuilt locally.
        """
        if timeout is None:
            timeout = self._config.sync_request_timeout
        self._driver.check_can_block()
        seq, result = self._send_request(handler, args)
        if not result._done and not self._driver.wait_for(result, timeout):
            if not result._done:
                self._pending.pop(seq, None)
                if self._closed:
                    raise ConnectionClosed(
                        f"connection {self.connid} closed while waiting for a reply"
                    )
                raise AsyncResultTimeout(result.timeout_message(timeout))
        if result._is_error:
            raise result._value
        return result._value

    def async_request(self, handler: int, *args: Any) -> AsyncResult:
        """Send a request and return its ``AsyncResult`` without waiting."""
        return self._send_request(handler, args)[1]

    def ping(self, data: Any = None, timeout: Optional[float] = 3) -> None:
        """Send PING and check the echo.

        Raises:
            ProtocolError: the peer echoed something else.
        """
        if data is None:
            data = _PING_DATA
        echo = self.sync_request(HANDLE_PING, data, timeout=timeout)
        if echo != data:
            raise ProtocolError(f"ping echo differs from the data sent: {echo!r:.80}")

    def _send_request(self, handler: int, args: tuple) -> Tuple[int, AsyncResult]:
        if self._closed:
            raise ConnectionClosed(f"connection {self.connid} is closed")
        boxed = self._box(args)
        result = AsyncResult(self)
        result._request = (handler, args)
        seq = next(self._seq)
        self._pending[seq] = result
        try:
            self._send(encode_request(seq, handler, boxed))
        except BaseException:
            self._pending.pop(seq, None)
            raise
        return seq, result

    def _send(self, payload: bytes) -> None:
        frame = encode_frame(payload, self._config.compression_threshold)
        if self._releases:
            frame = self._release_frames() + frame
        if self._held_replies:
            frame = self._take_held_replies() + frame
        self._driver.send(frame)

    def _take_held_replies(self) -> bytes:
        frames = []
        held = self._held_replies
        while True:
            try:
                frames.append(held.popleft())
            except IndexError:
                return b"".join(frames)

    # ------------------------------------------------------------------ releases

    def flush_releases(self) -> None:
        """Send the queued DEL requests and held DEL replies, if any, in one write."""
        if (self._releases or self._held_replies) and not self._closed:
            frames = self._take_held_replies() + self._release_frames()
            if frames:
                try:
                    self._driver.send(frames)
                except ConnectionClosed:
                    pass

    def _release_frames(self) -> bytes:
        frames = []
        threshold = self._config.compression_threshold
        releases = self._releases
        proxies = self._proxies
        while True:
            try:
                ref = releases.popleft()
            except IndexError:
                break
            id_pack = ref.id_pack
            with self._proxy_lock:
                if proxies.get(id_pack) is ref:
                    del proxies[id_pack]
            seq = next(self._seq)
            self._ignored_replies.add(seq)
            boxed = (
                LABEL_TUPLE,
                ((LABEL_LOCAL_REF, id_pack), (LABEL_VALUE, ref.count)),
            )
            frames.append(
                encode_frame(encode_request(seq, HANDLE_DEL, boxed), threshold)
            )
        return b"".join(frames)

    # ------------------------------------------------------------------ boxing

    def _box(self, obj: Any) -> tuple:
        cls = type(obj)
        if cls in _SCALARS:
            return (LABEL_VALUE, obj)
        if cls is tuple:
            if not obj:
                return _BOXED_EMPTY_TUPLE
            if dumpable(obj):
                return (LABEL_VALUE, obj)
            # map() instead of a comprehension: no closure cell or function per call.
            return (LABEL_TUPLE, tuple(map(self._box, obj)))
        if issubclass(cls, _BaseNetref):
            if _get_conn(obj) is self:
                id_pack = _get_id_pack(obj)
                boxed = self._local_ref_codes.get(id_pack)
                if boxed is None:
                    boxed = _encoded_ref(
                        self._local_ref_codes, LABEL_LOCAL_REF, id_pack
                    )
                return boxed
        elif dumpable(obj):  # a frozenset or slice of values
            return (LABEL_VALUE, obj)
        id_pack = netref.id_pack_of(obj)
        self._exports.add(id_pack, obj)
        boxed = self._remote_ref_codes.get(id_pack)
        if boxed is None:
            boxed = _encoded_ref(self._remote_ref_codes, LABEL_REMOTE_REF, id_pack)
        return boxed

    def _unbox(self, boxed: Any) -> Any:
        if type(boxed) is not tuple or len(boxed) != 2:
            raise ValueError(
                f"invalid boxed value: expected (label, data), got {boxed!r:.80}"
            )
        label, data = boxed
        if label == LABEL_VALUE:
            return data
        if label == LABEL_TUPLE:
            if type(data) is not tuple:
                raise ValueError("invalid boxed tuple: its data is not a tuple")
            return tuple(map(self._unbox, data))
        if label == LABEL_LOCAL_REF:
            return self._exports.get(netref.check_id_pack(data))
        if label == LABEL_REMOTE_REF:
            return self._proxy_for(netref.check_id_pack(data))
        raise ValueError(f"invalid label {label!r}")

    def _proxy_for(self, id_pack: tuple) -> Any:
        with self._proxy_lock:
            ref = self._proxies.get(id_pack)
            if ref is not None:
                proxy = ref()
                if proxy is not None:
                    ref.count += 1
                    return proxy
        proxy = netref.make_proxy(self, id_pack, self._netref_class(id_pack))
        with self._proxy_lock:
            ref = self._proxies.get(id_pack)
            existing = ref() if ref is not None else None
            if existing is not None:
                # Another thread built a proxy for the same id_pack meanwhile: keep that one.
                ref.count += 1  # type: ignore[union-attr]
                return existing
            if not self._closed:
                self._proxies[id_pack] = _ProxyRef(
                    proxy, self._releases.append, id_pack
                )
        return proxy

    def _netref_class(self, id_pack: tuple) -> type:
        name_pack, _, instance_id = id_pack
        is_class = instance_id == 0
        if is_class:
            cls = self._class_cache.get(id_pack)
            if cls is not None:
                return cls
        cls = netref.builtin_class(name_pack, is_class)
        if cls is not None:
            return cls
        methods = self.sync_request(HANDLE_INSPECT, id_pack)
        cls = netref.make_class(name_pack, netref.check_methods(methods), is_class)
        if is_class:
            self._class_cache[id_pack] = cls
        return cls

    # ------------------------------------------------------------------ dispatch

    def dispatch_payload(self, payload: bytes) -> None:
        """Handle one received message (called by the driver, on any thread).

        A malformed message is a protocol violation: it is logged and the connection is
        closed. Errors inside handlers are sent to the peer as EXCEPTION replies.
        """
        try:
            msg_type, seq, body = decode_message(payload)
        except ProtocolError as exc:
            self.protocol_violation(exc)
            return
        if msg_type == MSG_REPLY:
            self._handle_reply(seq, body, False)
        elif msg_type == MSG_EXCEPTION:
            self._handle_reply(seq, body, True)
        else:
            self._handle_request(seq, body)

    def _handle_reply(self, seq: int, body: Any, is_error: bool) -> None:
        result = self._pending.pop(seq, None)
        if result is None:
            if seq in self._ignored_replies:
                self._ignored_replies.discard(seq)
            else:
                self._log.debug(
                    "%s: dropped a reply to unknown request %d", self.connid, seq
                )
            return
        try:
            if is_error:
                cfg = self._config
                value = vinegar.load_exception(
                    body,
                    instantiate_custom=cfg.instantiate_custom_exceptions,
                    import_custom=cfg.import_custom_exceptions,
                )
            else:
                value = self._unbox(body)
        except ProtocolError as exc:
            result._set(True, exc)
            self.protocol_violation(exc)
            return
        except Exception as exc:
            # For example a LOCAL_REF the table does not hold, or a failed INSPECT.
            result._set(True, exc)
            return
        result._set(is_error, value)

    def _handle_request(self, seq: int, body: tuple) -> None:
        handler_code, boxed_args = body
        try:
            handler = _HANDLERS.get(handler_code)
            if handler is None:
                raise KeyError(handler_code)
            args = self._unbox(boxed_args)
            if type(args) is not tuple:
                raise TypeError(
                    f"request arguments must be a tuple, not {type(args).__name__}"
                )
            low, high = _ARITY[handler_code]
            if not low <= len(args) <= high:
                handlers.check_arity(handler_code, args)  # raises the TypeError
            value = handler(self, *args)
            if handler_code == HANDLE_CLOSE:
                return
            reply = encode_reply(seq, self._box(value))
            if handler_code == HANDLE_DEL and self._driver.backlog():
                # No thread waits for this reply, so it goes out with the next frame.
                self._held_replies.append(
                    encode_frame(reply, self._config.compression_threshold)
                )
                return
        except KeyboardInterrupt as exc:
            if self._config.propagate_KeyboardInterrupt_locally:
                raise
            self._send_exception(seq, handler_code, exc)
            return
        except SystemExit as exc:
            if self._config.propagate_SystemExit_locally:
                raise
            self._send_exception(seq, handler_code, exc)
            return
        except BaseException as exc:
            self._send_exception(seq, handler_code, exc)
            return
        try:
            self._send(reply)
        except ConnectionClosed:
            pass

    def _send_exception(self, seq: int, handler_code: Any, exc: BaseException) -> None:
        cfg = self._config
        if cfg.log_exceptions and self._log.isEnabledFor(logging.DEBUG):
            self._log.debug(
                "%s: request %d (handler %r) raised %s",
                self.connid,
                seq,
                handler_code,
                type(exc).__name__,
                exc_info=not isinstance(exc, StopIteration),
            )
        data = vinegar.dump_exception(
            exc, cfg.include_local_traceback, cfg.include_local_version
        )
        try:
            self._send(encode_exception(seq, data))
        except ConnectionClosed:
            pass

    # ------------------------------------------------------------------ serving

    def serve(self, timeout: Optional[float] = 1.0) -> bool:
        """Serve incoming requests for up to ``timeout`` seconds; True if any arrived."""
        return self._driver.serve(timeout)

    def serve_all(self) -> None:
        """Serve until the connection closes, then close it."""
        self._driver.serve_all()

    def poll(self) -> bool:
        """Dispatch whatever can be read without blocking; True if anything was read."""
        return self._driver.poll()

    def serve_threaded(self, thread_count: int = 10) -> None:
        """Serve with ``thread_count`` threads until the connection closes, then close it.

        One thread reads at a time, but requests are handled in parallel, so a slow handler
        does not hold up the others (and requests may complete out of order).
        """
        threads = [
            threading.Thread(target=self._serve_until_closed, daemon=True)
            for _ in range(max(1, thread_count))
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            self.close()

    def _serve_until_closed(self) -> None:
        try:
            while not self._closed:
                self._driver.serve(1.0)
        except ConnectionClosed:
            pass

    def poll_all(self, timeout: Optional[float] = 0) -> bool:
        """Serve until nothing arrives within ``timeout`` seconds; True if anything came."""
        served = False
        while self._driver.serve(timeout):
            served = True
            timeout = 0
        return served

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Send CLOSE to the peer, then release everything. Idempotent.

        ``before_closed`` (if configured) is called with ``root`` first. CLOSE has no reply;
        the peer closes its end when it reads CLOSE, and this waits up to one second for
        that, discarding whatever else arrives meanwhile.
        """
        if self._closed:
            return
        cfg = self._config
        try:
            if cfg.before_closed is not None:
                cfg.before_closed(self.root)
            seq = next(self._seq)
            self._ignored_replies.add(seq)
            self._send(encode_request(seq, HANDLE_CLOSE, (LABEL_VALUE, ())))
            self._driver.linger(_CLOSE_LINGER)
        except ConnectionClosed:
            pass
        except Exception:
            if not cfg.close_catchall:
                self._cleanup("local close")
                raise
            self._log.debug(
                "%s: error while closing, ignored", self.connid, exc_info=True
            )
        self._cleanup("local close")

    def protocol_violation(self, exc: BaseException) -> None:
        """Log a malformed message or frame from the peer and close the connection."""
        self._log.warning("%s: closing the connection: %s", self.connid, exc)
        # No CLOSE is sent: a peer that sends garbage may also not read, and a blocked
        # write would hold this thread. Stock peers treat the end of stream like CLOSE.
        self._cleanup("protocol violation")

    def transport_lost(self, exc: Optional[BaseException]) -> None:
        """Close after the driver hit end of stream or an I/O error."""
        if not self._closed:
            self._log.info("%s: stream ended: %s", self.connid, exc or "end of stream")
        self._cleanup("stream ended", exc)

    def _closed_by_peer(self) -> None:
        self._log.debug("%s: peer sent CLOSE", self.connid)
        self._cleanup("closed by peer")

    def _cleanup(self, reason: str, cause: Optional[BaseException] = None) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        pending, self._pending = self._pending, {}
        detail = reason if cause is None else f"{reason}: {cause}"
        for result in pending.values():
            # Name the request: a caller with several calls in flight sees which failed.
            error = ConnectionClosed(
                f"{result.describe()} failed: connection {self.connid} closed ({detail})"
            )
            error.__cause__ = cause  # e.g. the TLS alert that ended the stream
            result._set(True, error)
        try:
            self._driver.close()
        finally:
            with self._proxy_lock:
                self._proxies.clear()
            self._releases.clear()
            self._class_cache.clear()
            self._exports.clear()
            self._remote_root = None
            on_disconnect = getattr(self._local_root, "on_disconnect", None)
            if on_disconnect is not None and self._connected:
                try:
                    on_disconnect(self)
                except Exception:
                    self._log.warning(
                        "%s: on_disconnect of %r raised",
                        self.connid,
                        type(self._local_root).__name__,
                        exc_info=True,
                    )
