"""Proxies ("netrefs") for objects that live on the peer.

A proxy stores its connection and the object's id_pack ``(name_pack, class_id,
instance_id)``. Explicit attribute access (``p.x``, ``p.x = v``, ``del p.x``) becomes
GETATTR, SETATTR or DELATTR; ``repr``, ``str``, ``hash``, ``dir``, comparisons, ``with`` exit
and pickling have their own requests; every other special method exists on the proxy class
only when the peer's object has it, and becomes CALLATTR (``__call__`` becomes CALL).

Proxy classes for the 34 builtin type names stock rpyc knows are built from the local types,
so receiving a ``builtins.list`` costs no INSPECT round trip. For other names the connection
asks the peer with INSPECT and calls ``make_class`` with the answer.

``p.__class__`` is resolved locally from ``name_pack``: the builtin table first, then the
longest dotted prefix that is a module in the local ``sys.modules`` followed by a class
attribute of it. A module proxy gets the module type. A name whose module is known locally
but whose class is not gets the proxy class itself (stock 6.0.2 answers the module type
there). When no module matches, ``__class__`` is read from the peer with GETATTR.

Names in ``wire.LOCAL_ATTRS`` are handled here without traffic. This module holds no I/O of
its own; release on garbage collection is done by the connection through weak references.
"""

from __future__ import annotations

import builtins
import inspect
import pickle
import sys
import types
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

from rpyc_engine.protocol.wire import (
    BUILTIN_NETREF_NAMES,
    HANDLE_BUFFITER,
    HANDLE_CALL,
    HANDLE_CALLATTR,
    HANDLE_CMP,
    HANDLE_CTXEXIT,
    HANDLE_DELATTR,
    HANDLE_DIR,
    HANDLE_GETATTR,
    HANDLE_HASH,
    HANDLE_INSTANCECHECK,
    HANDLE_OLDSLICING,
    HANDLE_PICKLE,
    HANDLE_REPR,
    HANDLE_SETATTR,
    HANDLE_STR,
    LOCAL_ATTRS,
)

__all__ = [
    "BaseNetref",
    "buffiter",
    "builtin_class",
    "check_id_pack",
    "get_conn",
    "get_id_pack",
    "id_pack_of",
    "make_class",
    "make_proxy",
    "resolve_local_class",
]

_object_getattribute = object.__getattribute__
_object_setattr = object.__setattr__
_object_delattr = object.__delattr__
# Names looked up on the proxy itself although LOCAL_ATTRS lists them: stock forwards
# ``__doc__`` to the peer.
_FORWARDED_LOCAL = frozenset({"__doc__"})
# ``__call__`` and ``__array__`` are read from the proxy class as stock does, so
# ``callable()``-style probes and numpy see the local stub (or its absence) without traffic.
_LOCAL = (LOCAL_ATTRS - _FORWARDED_LOCAL) | {"__call__", "__array__"}
# Routines never turned into stubs: type() would make the first two implicit classmethods,
# and the rest are implemented locally by BaseNetref.
_NO_STUB = LOCAL_ATTRS | {
    "__init_subclass__",
    "__class_getitem__",
    "__subclasshook__",
    "__subclasscheck__",
    "__array__",
}


class BaseNetref:
    """Base class of every proxy class; see the module docstring for the mapping."""

    __slots__ = ("____conn__", "____id_pack__", "__weakref__")
    # The local class the proxied object's name denotes (set per proxy class).
    ____local_class__: Optional[type] = None

    def __init__(self) -> None:
        pass

    def __getattribute__(self, name: str) -> Any:
        if name in _LOCAL:
            return _object_getattribute(self, name)
        return _get_conn(self).sync_request(HANDLE_GETATTR, self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LOCAL:
            _object_setattr(self, name, value)
        else:
            _get_conn(self).sync_request(HANDLE_SETATTR, self, name, value)

    def __delattr__(self, name: str) -> None:
        if name in _LOCAL:
            _object_delattr(self, name)
        else:
            _get_conn(self).sync_request(HANDLE_DELATTR, self, name)

    def __dir__(self) -> list:
        return list(_get_conn(self).sync_request(HANDLE_DIR, self))

    def __hash__(self) -> int:
        return _get_conn(self).sync_request(HANDLE_HASH, self)

    def __repr__(self) -> str:
        conn = _get_conn(self)
        if conn.closed:
            # Debuggers and tracebacks show proxies after their connection is gone.
            return f"<proxy of {_get_id_pack(self)[0]}, connection closed>"
        return conn.sync_request(HANDLE_REPR, self)

    def __str__(self) -> str:
        return _get_conn(self).sync_request(HANDLE_STR, self)

    def __cmp__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__cmp__")

    def __eq__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__eq__")

    def __ne__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__ne__")

    def __lt__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__lt__")

    def __gt__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__gt__")

    def __le__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__le__")

    def __ge__(self, other: Any) -> Any:
        return _get_conn(self).sync_request(HANDLE_CMP, self, other, "__ge__")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        # Stock peers send only the exception class; ours rebuild builtin ones by name.
        return _get_conn(self).sync_request(HANDLE_CTXEXIT, self, exc_type)

    def __reduce_ex__(self, proto: Any) -> Any:
        # The peer pickles the real object if its allow_pickle permits. Unpickling the
        # result runs the peer's pickle here, so copy or pickle only proxies of trusted
        # peers.
        return pickle.loads, (_get_conn(self).sync_request(HANDLE_PICKLE, self, proto),)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(pickle.DEFAULT_PROTOCOL)

    def __instancecheck__(self, other: Any) -> bool:
        id_pack = _get_id_pack(self)
        if id_pack[2] != 0:
            raise TypeError(
                f"isinstance() arg 2 must be a type; {id_pack[0]} proxy is an instance"
            )
        if issubclass(type(other), BaseNetref):
            conn = _get_conn(self)
            if _get_conn(other) is conn:
                other_id_pack = _get_id_pack(other)
                if other_id_pack[1] == id_pack[1]:
                    return other_id_pack[2] != 0
                return bool(
                    conn.sync_request(HANDLE_INSTANCECHECK, self, other_id_pack)
                )
        local = type(self).____local_class__  # type: ignore[attr-defined]
        return local is not None and isinstance(other, local)

    def __subclasscheck__(self, other: Any) -> bool:
        id_pack = _get_id_pack(self)
        if issubclass(type(other), BaseNetref):
            conn = _get_conn(self)
            if _get_conn(other) is conn:
                other_id_pack = _get_id_pack(other)
                if other_id_pack[1] == id_pack[1] and other_id_pack[2] == 0:
                    return True
                return bool(
                    conn.sync_request(
                        HANDLE_CALLATTR, self, "__subclasscheck__", (other,), ()
                    )
                )
        local = type(self).____local_class__  # type: ignore[attr-defined]
        return (
            isinstance(other, type) and local is not None and issubclass(other, local)
        )


_get_conn: Callable[[Any], Any] = BaseNetref.____conn__.__get__  # type: ignore[attr-defined]
_get_id_pack: Callable[[Any], Any] = BaseNetref.____id_pack__.__get__  # type: ignore[attr-defined]


def get_conn(proxy: Any) -> Any:
    """Return the connection a proxy belongs to."""
    return _get_conn(proxy)


def get_id_pack(proxy: Any) -> tuple:
    """Return a proxy's id_pack."""
    return _get_id_pack(proxy)


def id_pack_of(obj: Any) -> tuple:
    """Return the id_pack under which ``obj`` is exported (or a proxy's own id_pack).

    Classes get instance_id 0; modules are named by ``__name__`` when that name is in
    ``sys.modules``; everything else by its type's ``module.name``.
    """
    cls = type(obj)
    if issubclass(cls, BaseNetref):
        return _get_id_pack(obj)
    if issubclass(cls, type):
        return (f"{obj.__module__}.{obj.__name__}", id(obj), 0)
    if issubclass(cls, types.ModuleType):
        name = str(getattr(obj, "__name__", "?"))
        if name not in sys.modules:
            name = f"{cls.__module__}.{name}"
        return (name, id(cls), id(obj))
    return (f"{cls.__module__}.{cls.__name__}", id(cls), id(obj))


def check_id_pack(value: Any) -> tuple:
    """Return ``value`` if it is an id_pack ``(str, int, int)``; else raise ``ValueError``."""
    if (
        type(value) is tuple
        and len(value) == 3
        and type(value[0]) is str
        and type(value[1]) is int
        and type(value[2]) is int
    ):
        return value
    raise ValueError(f"invalid id_pack: expected (str, int, int), got {value!r:.80}")


def check_methods(value: Any) -> Tuple[Tuple[str, Optional[str]], ...]:
    """Validate an INSPECT reply: a tuple of ``(name, doc)`` with str names.

    Raises:
        ValueError: the reply has another shape.
    """
    if type(value) is not tuple:
        raise ValueError(
            f"invalid INSPECT reply: expected a tuple, got {type(value).__name__}"
        )
    for item in value:
        if type(item) is not tuple or len(item) != 2 or type(item[0]) is not str:
            raise ValueError(f"invalid INSPECT reply entry: {item!r:.80}")
    return value


def buffiter(proxy: Any, chunk: int = 128) -> Iterator[Any]:
    """Iterate over a remote iterable, fetching up to ``chunk`` items per round trip.

    Plain ``for x in proxy`` costs one CALLATTR ``__next__`` per item; this sends one
    ``__iter__`` and then BUFFITER requests, which stock rpyc 6.0.2 peers also answer.

    Raises:
        TypeError: ``proxy`` is not a proxy, or ``chunk`` is not a positive int.
    """
    if not issubclass(type(proxy), BaseNetref):
        raise TypeError(
            f"buffiter needs a proxy, not {type(proxy).__name__}; use iter()"
        )
    if type(chunk) is not int or chunk < 1:
        raise TypeError(f"chunk must be an int >= 1, not {chunk!r}")
    conn = _get_conn(proxy)
    iterator = iter(proxy)
    while True:
        items = conn.sync_request(HANDLE_BUFFITER, iterator, chunk)
        if not items:
            return
        yield from items


def make_proxy(conn: Any, id_pack: tuple, cls: type) -> Any:
    """Create a proxy of class ``cls`` for ``id_pack`` on ``conn``."""
    proxy: Any = object.__new__(cls)
    _object_setattr(proxy, "____conn__", conn)
    _object_setattr(proxy, "____id_pack__", id_pack)
    return proxy


# ---------------------------------------------------------------------- proxy classes


def _call_stub() -> Callable[..., Any]:
    def stub(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _get_conn(self).sync_request(
            HANDLE_CALL, self, args, tuple(kwargs.items()) if kwargs else ()
        )

    return stub


def _slicing_stub(name: str) -> Callable[..., Any]:
    attempt = name.replace("slice", "item")

    def stub(self: Any, start: Any, stop: Any, *args: Any) -> Any:
        if stop == sys.maxsize:
            stop = None
        return _get_conn(self).sync_request(
            HANDLE_OLDSLICING, self, attempt, name, start, stop, args
        )

    return stub


def _callattr_stub(name: str) -> Callable[..., Any]:
    def stub(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _get_conn(self).sync_request(
            HANDLE_CALLATTR, self, name, args, tuple(kwargs.items()) if kwargs else ()
        )

    return stub


def _method_stub(name: str, doc: Optional[str]) -> Callable[..., Any]:
    if name == "__call__":
        stub = _call_stub()
    elif name in ("__getslice__", "__setslice__", "__delslice__"):
        stub = _slicing_stub(name)
    else:
        stub = _callattr_stub(name)

    stub.__name__ = name
    stub.__qualname__ = name
    stub.__doc__ = doc
    return stub


def _array(self: Any, *args: Any, **kwargs: Any) -> Any:
    conn = _get_conn(self)
    if not conn._config.allow_pickle:
        raise ValueError("pickling is disabled")
    value = pickle.loads(
        conn.sync_request(HANDLE_PICKLE, self, pickle.HIGHEST_PROTOCOL)
    )
    to_array = getattr(value, "__array__", None)
    return to_array(*args, **kwargs) if to_array is not None else value


def _class_property(local: Optional[type]) -> property:
    if local is not None:
        return property(lambda self: local)
    return property(
        lambda self: _get_conn(self).sync_request(HANDLE_GETATTR, self, "__class__")
    )


def make_class(
    name_pack: str, methods: Iterable[Tuple[str, Optional[str]]], is_class: bool
) -> type:
    """Build a proxy class named ``name_pack`` with a stub for each listed method.

    Args:
        name_pack: the first id_pack item, such as ``"builtins.list"`` or ``"mod.Thing"``.
        methods: ``(name, doc)`` pairs, as INSPECT returns them.
        is_class: the proxies stand for classes (instance_id 0), not instances.
    """
    namespace: Dict[str, Any] = {"__slots__": (), "__module__": "rpyc_engine.netref"}
    for name, doc in methods:
        if name == "__array__":
            namespace[name] = _array
        elif name not in _NO_STUB:
            namespace[name] = _method_stub(name, doc)
    local = resolve_local_class(name_pack)
    namespace["____local_class__"] = local
    if local is not None:
        namespace["__class__"] = _class_property(type(local) if is_class else local)
    elif _module_prefix(name_pack) is not None:
        # The module is loaded here but has no such class, so return the proxy class.
        namespace["__class__"] = property(type)
    else:
        namespace["__class__"] = _class_property(None)
    return type(name_pack, (BaseNetref,), namespace)


# ---------------------------------------------------------------------- local classes


def _builtin_types() -> Dict[str, type]:
    table: Dict[str, type] = {
        "builtins.NoneType": type(None),
        "builtins.builtin_function_or_method": types.BuiltinFunctionType,
        "builtins.code": types.CodeType,
        "builtins.frame": types.FrameType,
        "builtins.function": types.FunctionType,
        "builtins.generator": types.GeneratorType,
        "builtins.list_iterator": type(iter([])),
        "builtins.mappingproxy": types.MappingProxyType,
        "builtins.method": types.MethodType,
        "builtins.method-wrapper": type(object().__str__),
        "builtins.module": types.ModuleType,
        "builtins.range_iterator": type(iter(range(0))),
        "builtins.set_iterator": type(iter(set())),
        "builtins.traceback": types.TracebackType,
        "builtins.tuple_iterator": type(iter(())),
        "builtins.wrapper_descriptor": type(object.__init__),
    }
    for name in BUILTIN_NETREF_NAMES:
        if name not in table:
            table[name] = getattr(builtins, name.split(".", 1)[1])
    return table


def _type_routines(klass: type) -> Tuple[Tuple[str, Optional[str]], ...]:
    merged: Dict[str, Any] = {}
    for base in reversed(klass.__mro__):
        merged.update(base.__dict__)
    return tuple(
        (name, value.__doc__ if isinstance(value.__doc__, str) else None)
        for name, value in merged.items()
        if name not in LOCAL_ATTRS and inspect.isroutine(value)
    )


_BUILTIN_TYPES = _builtin_types()
_builtin_instance_classes: Dict[str, type] = {}
_builtin_class_classes: Dict[str, type] = {}


def builtin_class(name_pack: str, is_class: bool) -> Optional[type]:
    """Return the shared proxy class for a builtin type name, or ``None`` for other names.

    Instance proxies get the type's own routines; class proxies (``is_class``) get the
    routines of the metaclass ``type`` followed by the class's, as INSPECT lists them.
    """
    local = _BUILTIN_TYPES.get(name_pack)
    if local is None:
        return None
    cache = _builtin_class_classes if is_class else _builtin_instance_classes
    cls = cache.get(name_pack)
    if cls is None:
        routines = _type_routines(local)
        if is_class:
            routines = _type_routines(type) + routines
        cls = cache.setdefault(name_pack, make_class(name_pack, routines, is_class))
    return cls


def _module_prefix(name_pack: str) -> Optional[Tuple[types.ModuleType, str]]:
    parts = name_pack.split(".")
    for index in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:index]))
        if module is not None:
            return module, ".".join(parts[index:])
    return None


def resolve_local_class(name_pack: str) -> Optional[type]:
    """Return the local class ``name_pack`` denotes, the module type for a module name, or
    ``None`` when nothing local matches. Reads module dicts only, so no import and no
    module ``__getattr__`` runs."""
    local = _BUILTIN_TYPES.get(name_pack)
    if local is not None:
        return local
    found = _module_prefix(name_pack)
    if found is None:
        return None
    module, rest = found
    if not rest:
        return types.ModuleType
    value: Any = module
    for part in rest.split("."):
        namespace = getattr(value, "__dict__", None)
        if not isinstance(namespace, (dict, types.MappingProxyType)):
            return None
        value = namespace.get(part)
    return value if isinstance(value, type) else None


def builtin_exception(name_pack: str) -> Optional[type]:
    """Return the builtin exception class named ``builtins.<Name>``, or ``None``."""
    module, _, name = name_pack.rpartition(".")
    if module != "builtins":
        return None
    value = getattr(builtins, name, None)
    return (
        value if isinstance(value, type) and issubclass(value, BaseException) else None
    )
