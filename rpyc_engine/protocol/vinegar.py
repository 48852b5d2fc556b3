"""vinegar: exceptions to and from their RPyC 6 wire form.

Wire form (the body of an EXCEPTION message, rpyc 6.0.x):

- exactly ``StopIteration`` is the int 1;
- anything else is the 4-tuple ``((module, class_name), args, attrs, traceback_text)``:
  ``args`` holds each ``exc.args`` item, or its ``repr()`` when it is not dumpable; ``attrs``
  holds ``(name, value)`` for every public name in ``dir(exc)`` except ``args`` and
  ``with_traceback`` (values not dumpable are sent as ``repr()``), followed by
  ``("_remote_version", "6.0.2")``.

The receiver rebuilds builtins as the real builtin class and any other class as a subclass of
``GenericException`` named ``"<module>.<class_name>"``. Every rebuilt exception is an
instance of a per-class subclass whose ``str()`` appends the remote traceback under a banner.
Nothing is imported unless the caller asks for it.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import sys
import traceback
from typing import Any, Dict, Optional, Tuple

from .brine import dumpable
from .errors import ProtocolError
from .wire import EXCEPTION_STOP_ITERATION, PROTOCOL_VERSION

__all__ = ["GenericException", "dump_exception", "load_exception"]

logger = logging.getLogger(__name__)

TRACEBACK_DENIED = "<traceback denied>"
VERSION_DENIED = "<version denied>"
BANNER_PREFIX = "\n\n========= Remote Traceback ("
_SKIPPED_ATTRS = frozenset({"args", "with_traceback", "_remote_tb"})
# A hostile peer can send endless distinct class names; cache at most this many.
_MAX_CACHED_CLASSES = 1024


class GenericException(Exception):
    """Base of the classes made up for remote exceptions whose class is not available here.

    Each made-up subclass is named ``"<module>.<class_name>"`` after the remote class and
    stores the remote names in ``_remote_module`` and ``_remote_name``, so that sending the
    exception on to another peer keeps the original class name.
    """

    _remote_module = "builtins"
    _remote_name = "Exception"


# ---------------------------------------------------------------------------------------
# Encoding


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not stop the exception from travelling
        return "<%s object: repr() raised %s>" % (_type_name(value), type(exc).__name__)
    if type(text) is not str:
        return "<%s object: repr() returned %s>" % (_type_name(value), _type_name(text))
    return text


def _type_name(value: Any) -> str:
    try:
        return type(value).__name__
    except Exception:
        return "unknown"


def _wire_value(value: Any) -> Any:
    return value if dumpable(value) else _safe_repr(value)


def _wire_class_name(cls: type) -> Tuple[str, str]:
    if issubclass(cls, GenericException):
        return str(cls._remote_module), str(cls._remote_name)
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__name__", None)
    return (
        module if type(module) is str else "builtins",
        name if type(name) is str else "Exception",
    )


def _wire_args(exc: BaseException) -> Tuple[Any, ...]:
    try:
        args = tuple(exc.args)
    except Exception:
        return ("<args unavailable>",)
    return tuple(_wire_value(item) for item in args)


def _wire_attrs(exc: BaseException, include_version: bool) -> Tuple[Tuple[str, Any], ...]:
    attrs = []
    try:
        names = dir(exc)
    except Exception:
        names = []
    for name in names:
        if type(name) is not str or name.startswith("_") or name in _SKIPPED_ATTRS:
            continue
        try:
            value = getattr(exc, name)
        except Exception:  # stock skips AttributeError; any other error is skipped too
            continue
        attrs.append((name, _wire_value(value)))
    attrs.append(("_remote_version", PROTOCOL_VERSION if include_version else VERSION_DENIED))
    return tuple(attrs)


def _traceback_text(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception as error:
        return "<traceback unavailable: formatting raised %s>" % type(error).__name__


def dump_exception(
    exc: BaseException, include_traceback: bool = True, include_version: bool = True
) -> Any:
    """Convert an exception to its wire form (a brine-dumpable value).

    Args:
        exc: the exception to send.
        include_traceback: send the formatted traceback (with chained exceptions); else the
            text ``"<traceback denied>"``.
        include_version: send ``_remote_version`` as ``"6.0.2"``; else ``"<version denied>"``.

    Returns:
        The int 1 for exactly ``StopIteration``, otherwise the 4-tuple
        ``((module, class_name), args, attrs, traceback_text)``. Broken ``__repr__``,
        ``__str__`` or attribute getters yield placeholder text instead of raising.
    """
    if type(exc) is StopIteration:
        return EXCEPTION_STOP_ITERATION
    text = _traceback_text(exc) if include_traceback else TRACEBACK_DENIED
    return (
        _wire_class_name(type(exc)),
        _wire_args(exc),
        _wire_attrs(exc, include_version),
        text,
    )


# ---------------------------------------------------------------------------------------
# Decoding

_generic_classes: Dict[str, type] = {}
_remote_classes: Dict[type, type] = {}


def _generic_class(module: str, name: str) -> type:
    full_name = "%s.%s" % (module, name)
    cls = _generic_classes.get(full_name)
    if cls is None:
        namespace = {
            "__module__": "%s/%s" % (__name__, module),
            "_remote_module": module,
            "_remote_name": name,
        }
        cls = type(full_name, (GenericException,), namespace)
        if len(_generic_classes) < _MAX_CACHED_CLASSES:
            _generic_classes[full_name] = cls
    return cls


def _remote_str(self: BaseException) -> str:
    """``str()`` of a rebuilt exception: the class's own text, a banner, the remote traceback."""
    base = _remote_base(type(self))
    try:
        text = base.__str__(self)
    except Exception as exc:
        text = "<str() raised %s>" % type(exc).__name__
    remote_tb = getattr(self, "_remote_tb", "")
    if type(remote_tb) is not str:
        remote_tb = _safe_repr(remote_tb)
    number = remote_tb.count(BANNER_PREFIX) + 1
    return "%s%s%d) =========\n%s" % (text, BANNER_PREFIX, number, remote_tb)


def _remote_base(cls: type) -> type:
    for klass in cls.__mro__:
        if klass.__dict__.get("_is_remote_wrapper"):
            return klass.__bases__[0]
    return BaseException


def _remote_class(cls: type) -> type:
    """Return the per-class subclass whose ``str()`` shows the remote traceback."""
    wrapper = _remote_classes.get(cls)
    if wrapper is None:
        namespace = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__str__": _remote_str,
            "__repr__": _remote_str,
            "_is_remote_wrapper": True,
        }
        wrapper = type(cls.__name__, (cls,), namespace)
        if len(_remote_classes) < _MAX_CACHED_CLASSES:
            _remote_classes[cls] = wrapper
    return wrapper


def _find_class(
    module: str, name: str, instantiate_custom: bool, import_custom: bool
) -> Optional[type]:
    if import_custom and module not in sys.modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # import errors are expected for peer-only modules
            logger.debug("cannot import module %r of a remote exception: %s", module, exc)
    if instantiate_custom:
        owner = sys.modules.get(module)
        cls = getattr(owner, name, None) if owner is not None else None
    elif module == "builtins":
        cls = getattr(builtins, name, None)
    else:
        cls = None
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return None


def _check_shape(data: Any) -> None:
    if type(data) is not tuple or len(data) != 4:
        raise ProtocolError(
            "exception data must be the int 1 or a 4-tuple, not %s" % _type_name(data)
        )
    names, args, attrs, remote_tb = data
    if (
        type(names) is not tuple
        or len(names) != 2
        or type(names[0]) is not str
        or type(names[1]) is not str
    ):
        raise ProtocolError("exception data must start with (module, class_name) as two str")
    if "\x00" in names[0] or "\x00" in names[1]:
        raise ProtocolError("exception class name %r contains a NUL character" % (names,))
    if type(args) is not tuple:
        raise ProtocolError("exception args must be a tuple, not %s" % _type_name(args))
    if type(attrs) is not tuple:
        raise ProtocolError("exception attrs must be a tuple, not %s" % _type_name(attrs))
    for pair in attrs:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str:
            raise ProtocolError("exception attrs must be (name, value) pairs with str names")
    if type(remote_tb) is not str:
        raise ProtocolError("exception traceback must be a str, not %s" % _type_name(remote_tb))


def _version_warning(attrs: Tuple[Tuple[str, Any], ...]) -> str:
    for name, value in attrs:
        if name == "_remote_version" and type(value) is str:
            major = value.split(".", 1)[0]
            if major.isdigit() and major != PROTOCOL_VERSION.split(".", 1)[0]:
                return "\nWARNING: Remote is on RPyC %s and local is on RPyC %s.\n\n" % (
                    value,
                    PROTOCOL_VERSION,
                )
    return ""


def _instantiate(cls: type, module: str, name: str) -> BaseException:
    """Create an instance of ``cls``'s remote wrapper without calling ``__init__``.

    Falls back to the made-up ``GenericException`` subclass when the class cannot be
    subclassed or its ``__new__`` needs arguments.
    """
    try:
        wrapper = _remote_class(cls)
        exc = wrapper.__new__(wrapper)
        if isinstance(exc, wrapper):
            return exc
    except Exception as error:
        logger.debug("cannot instantiate remote exception class %s.%s: %s", module, name, error)
    fallback = _remote_class(_generic_class(module, name))
    return fallback.__new__(fallback)


def load_exception(
    data: Any, *, instantiate_custom: bool = False, import_custom: bool = False
) -> BaseException:
    """Rebuild an exception from its wire form.

    Args:
        data: the body of an EXCEPTION message.
        instantiate_custom: use the real class from an already imported module (the
            ``instantiate_custom_exceptions`` option); otherwise only builtins are real.
        import_custom: import the exception's module first when it is not loaded (the
            ``import_custom_exceptions`` option). Nothing is imported otherwise.

    Returns:
        The exception, not yet raised. ``__init__`` is not called; ``args`` and the sent
        attributes (except read-only ones and dunder names) are set, and ``_remote_tb``
        holds the remote traceback text.

    Raises:
        ProtocolError: ``data`` does not have the wire form's shape and types.
    """
    if (type(data) is int or type(data) is bool) and data == EXCEPTION_STOP_ITERATION:
        return StopIteration()
    if type(data) is str:
        # Legacy (Python 2 string exception) form: stock never sends it on Python 3.
        data = (("builtins", "Exception"), (data,), (), TRACEBACK_DENIED)
    _check_shape(data)
    (module, name), args, attrs, remote_tb = data
    cls = _find_class(module, name, instantiate_custom, import_custom)
    if cls is None:
        cls = _generic_class(module, name)
    exc = _instantiate(cls, module, name)
    try:
        exc.args = args
    except Exception as error:
        logger.debug("cannot set args on remote exception %s.%s: %s", module, name, error)
    for attr_name, value in attrs:
        if attr_name.startswith("__") and attr_name.endswith("__"):
            continue
        try:
            setattr(exc, attr_name, value)
        except Exception:  # read-only attributes are skipped, as stock does
            pass
    try:
        exc._remote_tb = remote_tb + _version_warning(attrs)  # type: ignore[attr-defined]
    except Exception as error:
        logger.debug("cannot set _remote_tb on remote exception %s.%s: %s", module, name, error)
    return exc
