"""The attribute access rule that decides which names the peer may read, write or delete.

The rule is stock rpyc 6.0.2's, applied to GETATTR, SETATTR, DELATTR, CALLATTR, the CMP
operator name, OLDSLICING and CTXEXIT:

0. When ``type(obj)`` defines ``_rpyc_getattr`` (reads), ``_rpyc_setattr`` (writes) or
   ``_rpyc_delattr`` (deletes), that hook alone decides: it is called as
   ``hook(obj, name[, value])`` and nothing else is checked.
1. Otherwise the master switch (``allow_getattr``, ``allow_setattr``, ``allow_delattr``) must
   be on.
2. A name is *plain* when all attributes are allowed, it starts with the exposed prefix, it
   is in ``safe_attrs`` (with ``allow_safe_attrs``), or it has no leading underscore (with
   ``allow_public_attrs``).
3. When ``obj`` has ``<prefix><name>``, that attribute is used instead of a plain name that
   ``obj`` does not have. A non-plain name is allowed only through its exposed form.

Unlike stock, the existence checks of step 3 look attributes up statically
(``inspect.getattr_static``), so checking access never runs a property or ``__getattr__``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

from rpyc_engine.config import Config
from rpyc_engine.netref import BaseNetref

__all__ = ["check_name", "get_attr", "set_attr", "del_attr", "resolve_name"]

_MISSING = object()
_getattr_static = inspect.getattr_static


def check_name(name: Any) -> str:
    """Return ``name`` as text; bytes are decoded as UTF-8.

    Raises:
        TypeError: ``name`` is neither str nor UTF-8 bytes (message "name must be a string").
    """
    if type(name) is str:
        return name
    if type(name) is bytes:
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise TypeError("name must be a string")


def _has_static(obj: Any, name: str) -> bool:
    try:
        return _getattr_static(obj, name, _MISSING) is not _MISSING
    except Exception:
        return False


def resolve_name(config: Config, obj: Any, name: str, allowed: bool) -> str:
    """Return the attribute name to use for ``name`` on ``obj``, per steps 1 to 3.

    Raises:
        AttributeError: the name is not accessible (message "cannot access '<name>'").
    """
    if not allowed:
        raise AttributeError(f"cannot access {name!r}")
    prefix: Optional[str] = (
        config.exposed_prefix if config.allow_exposed_attrs else None
    )
    plain = (
        config.allow_all_attrs
        or (prefix is not None and name.startswith(prefix))
        or (config.allow_safe_attrs and name in config.safe_attrs)
        or (config.allow_public_attrs and not name.startswith("_"))
    )
    exposed_name = None if prefix is None else prefix + name
    has_exposed = exposed_name is not None and _has_static(obj, exposed_name)
    if plain and (not has_exposed or _has_static(obj, name)):
        return name
    if has_exposed:
        return exposed_name  # type: ignore[return-value]
    if plain:
        return name
    raise AttributeError(f"cannot access {name!r}")


def _hook(owner: type, hook_name: str) -> Optional[Callable[..., Any]]:
    # Proxy classes may carry stubs named like hooks, copied from a peer's INSPECT reply.
    # Those belong to the peer's object, not to an access policy of ours.
    if issubclass(owner, BaseNetref):
        return None
    try:
        return getattr(owner, hook_name, None)
    except Exception:
        return None


def get_attr(
    config: Config, obj: Any, name: Any, hook_owner: Optional[type] = None
) -> Any:
    """Read ``obj.<name>`` for the peer through the access rule.

    Args:
        config: the settings of the side that owns ``obj``.
        obj: the object to read from.
        name: the requested name (str or UTF-8 bytes).
        hook_owner: where to look up ``_rpyc_getattr``; ``type(obj)`` by default. CMP passes
            the metaclass because it reads the operator off ``type(obj)``.
    """
    name = check_name(name)
    hook = _hook(type(obj) if hook_owner is None else hook_owner, "_rpyc_getattr")
    if hook is not None:
        return hook(obj, name)
    return getattr(obj, resolve_name(config, obj, name, config.allow_getattr))


def set_attr(config: Config, obj: Any, name: Any, value: Any) -> None:
    """Write ``obj.<name> = value`` for the peer through the access rule."""
    name = check_name(name)
    hook = _hook(type(obj), "_rpyc_setattr")
    if hook is not None:
        hook(obj, name, value)
        return
    setattr(obj, resolve_name(config, obj, name, config.allow_setattr), value)


def del_attr(config: Config, obj: Any, name: Any) -> None:
    """Delete ``obj.<name>`` for the peer through the access rule."""
    name = check_name(name)
    hook = _hook(type(obj), "_rpyc_delattr")
    if hook is not None:
        hook(obj, name)
        return
    delattr(obj, resolve_name(config, obj, name, config.allow_delattr))


def get_callable(obj: Any) -> Any:
    """Return what CALL should invoke for ``obj``.

    Holding a reference is the capability to call it, as in stock rpyc, with one addition.
    An object whose type defines ``_rpyc_getattr`` (such as a ``restricted()`` wrapper) is
    called only through ``_rpyc_getattr(obj, "__call__")``. So such a hook cannot be
    bypassed by calling the object instead of reading its attributes.

    A class is called like any other object: a peer that can reach a class (through an
    ``exposed_`` attribute, say) can construct instances of it. Expose a factory function
    instead of the class to control construction.
    """
    hook = _hook(type(obj), "_rpyc_getattr")
    if hook is not None:
        return hook(obj, "__call__")
    return obj
