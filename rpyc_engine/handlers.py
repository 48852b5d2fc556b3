"""The 20 RPyC 6 request handlers, executed against this side's objects.

Each handler takes the connection and the unboxed request arguments and returns the value to
box into the reply. Arguments are checked (count, types, that names are text) before any
object is touched. Attribute access goes through ``rpyc_engine.policy``; CMP checks its
operator name with the same rule (the CVE-2019-16328 fix of rpyc 4.1.2), so a peer cannot
name ``__getattribute__`` or ``__subclasses__`` as an "operator".
"""

from __future__ import annotations

import inspect
import pickle
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Tuple

from rpyc_engine import netref, policy
from rpyc_engine.protocol import wire
from rpyc_engine.protocol.wire import LOCAL_ATTRS

if TYPE_CHECKING:
    from rpyc_engine.connection import Connection

__all__ = ["ARITY", "HANDLERS", "check_arity", "list_methods"]

_BaseNetref = netref.BaseNetref
_MAX_BUFFITER_ITEMS = 65536


def _check_int(value: Any, what: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise TypeError(f"{what} must be an int >= {minimum}, not {value!r:.40}")
    return value


def _call_arguments(args: Any, kwargs: Any) -> Tuple[tuple, Dict[str, Any]]:
    if type(args) is not tuple:
        raise TypeError(f"call arguments must be a tuple, not {type(args).__name__}")
    if type(kwargs) is dict:
        items = tuple(kwargs.items())
    elif type(kwargs) is tuple:
        items = kwargs
    else:
        raise TypeError(
            f"keyword arguments must be a tuple of (name, value) pairs, "
            f"not {type(kwargs).__name__}"
        )
    result: Dict[str, Any] = {}
    for item in items:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError("keyword arguments must be (name, value) pairs")
        result[policy.check_name(item[0])] = item[1]
    return args, result


def handle_ping(conn: Connection, data: Any) -> Any:
    return data


def handle_close(conn: Connection) -> None:
    conn._closed_by_peer()


def handle_getroot(conn: Connection) -> Any:
    return conn._local_root


def handle_getattr(conn: Connection, obj: Any, name: Any) -> Any:
    return policy.get_attr(conn._config, obj, name)


def handle_delattr(conn: Connection, obj: Any, name: Any) -> None:
    policy.del_attr(conn._config, obj, name)


def handle_setattr(conn: Connection, obj: Any, name: Any, value: Any) -> None:
    policy.set_attr(conn._config, obj, name, value)


def handle_call(conn: Connection, obj: Any, args: Any = (), kwargs: Any = ()) -> Any:
    if type(args) is tuple and type(kwargs) is tuple and not kwargs:
        # The common call without keywords: nothing else to check.
        return policy.get_callable(obj)(*args)
    args, kwargs = _call_arguments(args, kwargs)
    return policy.get_callable(obj)(*args, **kwargs)


def handle_callattr(
    conn: Connection, obj: Any, name: Any, args: Any = (), kwargs: Any = ()
) -> Any:
    if type(args) is tuple and type(kwargs) is tuple and not kwargs:
        return policy.get_attr(conn._config, obj, name)(*args)
    args, kwargs = _call_arguments(args, kwargs)
    return policy.get_attr(conn._config, obj, name)(*args, **kwargs)


def handle_repr(conn: Connection, obj: Any) -> str:
    return repr(obj)


def handle_str(conn: Connection, obj: Any) -> str:
    return str(obj)


def handle_cmp(conn: Connection, obj: Any, other: Any, op: Any = "__cmp__") -> Any:
    cls = type(obj)
    method = policy.get_attr(conn._config, cls, op, hook_owner=type(cls))
    return method(obj, other)


def handle_hash(conn: Connection, obj: Any) -> int:
    return hash(obj)


def handle_dir(conn: Connection, obj: Any) -> tuple:
    return tuple(dir(obj))


def handle_pickle(conn: Connection, obj: Any, proto: Any) -> bytes:
    if not conn._config.allow_pickle:
        raise ValueError("pickling is disabled")
    if type(proto) is not int:
        raise TypeError(f"pickle protocol must be an int, not {type(proto).__name__}")
    return bytes(pickle.dumps(obj, proto))


def handle_del(conn: Connection, obj: Any, count: Any = 1) -> None:
    conn._exports.release(netref.id_pack_of(obj), _check_int(count, "DEL count", 1))


def handle_inspect(conn: Connection, id_pack: Any) -> tuple:
    obj = conn._exports.get(netref.check_id_pack(id_pack))
    if issubclass(type(obj), _BaseNetref):
        # A proxy we re-exported: its methods are known only to its own peer.
        owner = netref.get_conn(obj)
        return owner.sync_request(wire.HANDLE_INSPECT, netref.get_id_pack(obj))
    return list_methods(obj)


def handle_buffiter(conn: Connection, obj: Any, count: Any) -> tuple:
    # BUFFITER returns "up to count" items and an empty tuple only at the end, so a capped
    # batch is still correct, and a peer cannot make one reply hold an endless iterator.
    count = min(_check_int(count, "BUFFITER count", 0), _MAX_BUFFITER_ITEMS)
    items = []
    for _ in range(count):
        try:
            items.append(next(obj))
        except StopIteration:
            break
    return tuple(items)


def handle_oldslicing(
    conn: Connection,
    obj: Any,
    attempt: Any,
    fallback: Any,
    start: Any,
    stop: Any,
    args: Any,
) -> Any:
    if type(args) is not tuple:
        raise TypeError(f"slicing arguments must be a tuple, not {type(args).__name__}")
    config = conn._config
    try:
        return policy.get_attr(config, obj, attempt)(slice(start, stop), *args)
    except Exception:
        if stop is None:
            stop = sys.maxsize
        return policy.get_attr(config, obj, fallback)(start, stop, *args)


def _local_exception(exc: Any) -> Any:
    """Turn what a peer passed to ``__exit__`` into something this side can raise."""
    if issubclass(type(exc), _BaseNetref):
        # Stock peers pass the exception class as a reference; a builtin one can be
        # rebuilt here by name, anything else cannot be raised.
        local = netref.builtin_exception(netref.get_id_pack(exc)[0])
        if local is not None:
            return local
    return exc


def handle_ctxexit(conn: Connection, obj: Any, exc: Any) -> Any:
    if exc:
        try:
            raise _local_exception(exc)
        except BaseException:
            exc_type, exc_value, exc_tb = sys.exc_info()
    else:
        exc_type = exc_value = exc_tb = None
    exit_method = policy.get_attr(conn._config, obj, "__exit__")
    return exit_method(exc_type, exc_value, exc_tb)


def handle_instancecheck(conn: Connection, cls: Any, other_id_pack: Any) -> bool:
    other_id_pack = netref.check_id_pack(other_id_pack)
    if not isinstance(cls, type) and not issubclass(type(cls), _BaseNetref):
        raise TypeError(
            f"INSTANCECHECK needs a class as first argument, not {type(cls).__name__}"
        )
    try:
        other = conn._exports.get(other_id_pack)
    except KeyError:
        # Not one of ours: judge by the class its name denotes here, without making a
        # proxy (a proxy would send a DEL for an id_pack the peer never exported).
        local = netref.resolve_local_class(other_id_pack[0])
        return isinstance(local, type) and issubclass(local, cls)
    return isinstance(other, cls)


def list_methods(obj: Any) -> tuple:
    """List ``(name, doc)`` of the routines a proxy of ``obj`` should offer (INSPECT).

    Walks the MRO from ``object`` down (for a class, the metaclass MRO first), merges the
    class dicts keeping first-insertion order, keeps routines and drops ``LOCAL_ATTRS``.
    """
    own_mro: Tuple[type, ...] = type(obj).__mro__
    chain = list(reversed(own_mro))
    if isinstance(obj, type):
        chain += list(reversed(obj.__mro__))
    merged: Dict[str, Any] = {}
    for klass in chain:
        merged.update(klass.__dict__)
    methods = []
    for name, value in merged.items():
        if type(name) is not str or name in LOCAL_ATTRS or not inspect.isroutine(value):
            continue
        doc = getattr(value, "__doc__", None)
        methods.append((name, doc if type(doc) is str else None))
    return tuple(methods)


HANDLERS: Dict[int, Callable[..., Any]] = {
    wire.HANDLE_PING: handle_ping,
    wire.HANDLE_CLOSE: handle_close,
    wire.HANDLE_GETROOT: handle_getroot,
    wire.HANDLE_GETATTR: handle_getattr,
    wire.HANDLE_DELATTR: handle_delattr,
    wire.HANDLE_SETATTR: handle_setattr,
    wire.HANDLE_CALL: handle_call,
    wire.HANDLE_CALLATTR: handle_callattr,
    wire.HANDLE_REPR: handle_repr,
    wire.HANDLE_STR: handle_str,
    wire.HANDLE_CMP: handle_cmp,
    wire.HANDLE_HASH: handle_hash,
    wire.HANDLE_DIR: handle_dir,
    wire.HANDLE_PICKLE: handle_pickle,
    wire.HANDLE_DEL: handle_del,
    wire.HANDLE_INSPECT: handle_inspect,
    wire.HANDLE_BUFFITER: handle_buffiter,
    wire.HANDLE_OLDSLICING: handle_oldslicing,
    wire.HANDLE_CTXEXIT: handle_ctxexit,
    wire.HANDLE_INSTANCECHECK: handle_instancecheck,
}

# (minimum, maximum) number of arguments per handler code.
ARITY: Dict[int, Tuple[int, int]] = {
    wire.HANDLE_PING: (1, 1),
    wire.HANDLE_CLOSE: (0, 0),
    wire.HANDLE_GETROOT: (0, 0),
    wire.HANDLE_GETATTR: (2, 2),
    wire.HANDLE_DELATTR: (2, 2),
    wire.HANDLE_SETATTR: (3, 3),
    wire.HANDLE_CALL: (1, 3),
    wire.HANDLE_CALLATTR: (2, 4),
    wire.HANDLE_REPR: (1, 1),
    wire.HANDLE_STR: (1, 1),
    wire.HANDLE_CMP: (2, 3),
    wire.HANDLE_HASH: (1, 1),
    wire.HANDLE_DIR: (1, 1),
    wire.HANDLE_PICKLE: (2, 2),
    wire.HANDLE_DEL: (1, 2),
    wire.HANDLE_INSPECT: (1, 1),
    wire.HANDLE_BUFFITER: (2, 2),
    wire.HANDLE_OLDSLICING: (6, 6),
    wire.HANDLE_CTXEXIT: (2, 2),
    wire.HANDLE_INSTANCECHECK: (2, 2),
}


def check_arity(handler_code: int, args: tuple) -> None:
    """Raise ``TypeError`` when ``args`` has the wrong length for ``handler_code``."""
    low, high = ARITY[handler_code]
    if not low <= len(args) <= high:
        name = wire.HANDLER_NAMES[handler_code]
        expected = str(low) if low == high else f"{low} to {high}"
        raise TypeError(f"{name} takes {expected} arguments, got {len(args)}")
