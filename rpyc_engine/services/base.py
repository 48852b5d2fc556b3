"""``Service``: the root object a connection offers its peer, and ``restricted()``.

A service exposes methods and attributes by the ``exposed_`` prefix (``exposed_add`` is
reachable as ``add``) or with the ``@exposed`` decorator. Under the default settings
everything else on it is out of the peer's reach, and the peer may never set or delete
attributes on it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple, TypeVar

__all__ = ["Service", "VoidService", "Restricted", "exposed", "restricted"]

_F = TypeVar("_F", bound=Callable[..., Any])
_EXPOSED_FLAG = "_rpyc_exposed"


def exposed(func: _F) -> _F:
    """Mark a ``Service`` method as reachable by the peer under its own name.

    The service class gets an ``exposed_<name>`` alias of the method, which is what the
    access rule looks for; the method stays callable locally as before.
    """
    target = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
    setattr(target, _EXPOSED_FLAG, True)
    return func


class Service:
    """Base class of services (the root object each side offers).

    Subclasses define ``exposed_<name>`` members or ``@exposed`` methods. A new instance is
    usually created per connection; ``on_connect`` and ``on_disconnect`` run when the
    connection opens and closes.

    Attributes:
        ALIASES: names under which the service is known (registry, logs); the class name
            without a trailing ``Service``, upper-cased, when empty.
    """

    __slots__ = ()
    ALIASES: Tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            target = (
                value.__func__
                if isinstance(value, (classmethod, staticmethod))
                else value
            )
            if getattr(target, _EXPOSED_FLAG, False) and not name.startswith(
                "exposed_"
            ):
                setattr(cls, "exposed_" + name, value)

    def on_connect(self, conn: Any) -> None:
        """Called when a connection with this service as its root is created."""

    def on_disconnect(self, conn: Any) -> None:
        """Called once the connection has closed."""

    def _rpyc_delattr(self, name: str) -> None:
        raise AttributeError("access denied")

    def _rpyc_setattr(self, name: str, value: Any) -> None:
        raise AttributeError("access denied")

    @classmethod
    def get_service_aliases(cls) -> Tuple[str, ...]:
        """Return the service's names: ``ALIASES`` upper-cased, or one derived from the class."""
        if cls.ALIASES:
            return tuple(str(alias).upper() for alias in cls.ALIASES)
        name = cls.__name__.upper()
        if name.endswith("SERVICE") and len(name) > len("SERVICE"):
            name = name[: -len("SERVICE")]
        return (name,)

    @classmethod
    def get_service_name(cls) -> str:
        """Return the first of the service's aliases."""
        return cls.get_service_aliases()[0]

    exposed_get_service_aliases = get_service_aliases
    exposed_get_service_name = get_service_name


class VoidService(Service):
    """A service that exposes nothing beyond the service names (the client default)."""

    __slots__ = ()


class Restricted:
    """A wrapper that lets the peer reach only the listed attributes of an object.

    Reads go through ``_rpyc_getattr`` (only names in ``attrs``), writes and deletes through
    ``_rpyc_setattr`` and ``_rpyc_delattr`` (only names in ``wattrs``). A refused name raises
    ``AttributeError(name)``. Calling the wrapper is a read of ``__call__``. REPR, STR, HASH,
    DIR and comparisons see the wrapper, not the wrapped object, and the wrapper cannot be
    pickled.
    """

    __slots__ = ("_rpyc_wrapped", "_rpyc_attrs", "_rpyc_wattrs")
    _rpyc_wrapped: Any
    _rpyc_attrs: frozenset
    _rpyc_wattrs: frozenset

    def __init__(self, obj: Any, attrs: Iterable[str], wattrs: Iterable[str]) -> None:
        object.__setattr__(self, "_rpyc_wrapped", obj)
        object.__setattr__(self, "_rpyc_attrs", frozenset(attrs))
        object.__setattr__(self, "_rpyc_wattrs", frozenset(wattrs))

    def __repr__(self) -> str:
        return f"<restricted {type(self._rpyc_wrapped).__name__} object>"

    def __reduce_ex__(self, proto: Any) -> Any:
        raise TypeError("restricted objects cannot be pickled")

    def _rpyc_getattr(self, name: str) -> Any:
        if name not in self._rpyc_attrs:
            raise AttributeError(name)
        return getattr(self._rpyc_wrapped, name)

    def _rpyc_setattr(self, name: str, value: Any) -> None:
        if name not in self._rpyc_wattrs:
            raise AttributeError(name)
        setattr(self._rpyc_wrapped, name, value)

    def _rpyc_delattr(self, name: str) -> None:
        if name not in self._rpyc_wattrs:
            raise AttributeError(name)
        delattr(self._rpyc_wrapped, name)


class _CallableRestricted(Restricted):
    """A ``Restricted`` whose ``attrs`` include ``__call__``, so stock clients see it as
    callable (INSPECT lists ``__call__``)."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rpyc_wrapped(*args, **kwargs)


def restricted(
    obj: Any, attrs: Iterable[str], wattrs: Optional[Iterable[str]] = None
) -> Restricted:
    """Wrap ``obj`` so the peer may read only ``attrs`` and write only ``wattrs``.

    Args:
        obj: the object to expose.
        attrs: attribute names the peer may read (include ``"__call__"`` to let it call).
        wattrs: attribute names the peer may set or delete; ``None`` means ``attrs``; pass
            ``()`` to forbid every write.
    """
    if isinstance(attrs, str) or isinstance(wattrs, str):
        raise TypeError(
            "attrs and wattrs must be collections of names, not a single str"
        )
    attrs = frozenset(attrs)
    wattrs = attrs if wattrs is None else frozenset(wattrs)
    cls = _CallableRestricted if "__call__" in attrs else Restricted
    return cls(obj, attrs, wattrs)
