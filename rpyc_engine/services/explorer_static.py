"""Static attribute lookup: read attributes without running any of the object's code.

`static_lookup` follows Python's attribute rules (data descriptors on the type, then the
instance ``__dict__``, then other class attributes) but reads dictionaries directly and
never calls ``__getattribute__``, ``__getattr__``, ``__dir__`` or a descriptor's
``__get__``, with two exceptions that run only C code of the interpreter: slot members
(``__slots__``) and the getters that builtin types define (``int.real``,
``function.__name__``). Everything else that ``getattr`` would compute is returned as
the descriptor itself with the flag ``is_descriptor`` set, for the caller to show unrun.

Type checks use ``issubclass(type(obj), ...)``: ``isinstance`` falls back to the
``__class__`` attribute, which a class may define as a property.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

import types
from typing import Any, Dict, Iterator, Tuple

_MRO = type.__dict__["__mro__"]
_CLASS_DICT = type.__dict__["__dict__"]
_FLAGS = type.__dict__["__flags__"]
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_SLOT_TYPES = (types.GetSetDescriptorType, types.MemberDescriptorType)
# Class attributes whose __get__ only binds or unwraps, so showing them is harmless.
_PLAIN_METHOD_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)


def isa(obj: Any, cls: Any) -> bool:
    """Return whether ``type(obj)`` derives from ``cls`` (``__class__`` is not read)."""
    return issubclass(type(obj), cls)


def mro(klass: type) -> tuple:
    """Return the MRO of ``klass``, read from the type slot."""
    return _MRO.__get__(klass)


def class_dict(klass: type) -> Any:
    """Return the mapping proxy of a class's own namespace."""
    return _CLASS_DICT.__get__(klass)


def _find_in_mro(klass: type, name: str) -> Tuple[Any, bool]:
    for base in mro(klass):
        namespace = class_dict(base)
        if name in namespace:
            return namespace[name], True
    return None, False


def instance_dict(obj: Any) -> Dict[str, Any]:
    """Return the instance ``__dict__``, or an empty dict when it has no plain one."""
    slot, found = _find_in_mro(type(obj), "__dict__")
    if not found or not isa(slot, _SLOT_TYPES):
        return {}
    try:
        namespace = slot.__get__(obj, type(obj))
    except AttributeError:
        return {}
    return namespace if isa(namespace, dict) else {}


def _is_builtin_slot(value: Any) -> bool:
    if isa(value, types.MemberDescriptorType):
        return True
    if not isa(value, types.GetSetDescriptorType):
        return False
    if value.__name__ in ("__dict__", "__weakref__"):
        return True
    # A getter of a static (non-heap) type is C code of the interpreter or of a C
    # extension. Heap types with getsets come from C extensions that build their types
    # at run time, and their getters stay unrun.
    return not _FLAGS.__get__(value.__objclass__) & _HEAPTYPE


def is_descriptor_slot(value: Any) -> bool:
    """Return whether ``value`` is a getset or member descriptor object."""
    return isa(value, _SLOT_TYPES)


def _has_get(value: Any) -> bool:
    return _find_in_mro(type(value), "__get__")[1]


def _is_data_descriptor(value: Any) -> bool:
    kind = type(value)
    return _find_in_mro(kind, "__set__")[1] or _find_in_mro(kind, "__delete__")[1]


def static_lookup(obj: Any, name: str) -> Tuple[Any, bool]:
    """Look ``name`` up on ``obj`` without running its code.

    Returns:
        ``(value, is_descriptor)``: ``is_descriptor`` is true when ``getattr`` would
        run a descriptor (a property, say) and ``value`` is that descriptor, unrun.

    Raises:
        AttributeError: ``obj`` has no attribute ``name``.
    """
    if isa(obj, types.ModuleType):
        namespace = instance_dict(obj)
        if name in namespace:
            return namespace[name], False
    if isa(obj, type):
        return _lookup_on_class(obj, name)
    class_value, on_class = _find_in_mro(type(obj), name)
    if on_class and _has_get(class_value) and _is_data_descriptor(class_value):
        return _bind_slot(obj, name, class_value)
    namespace = instance_dict(obj)
    if name in namespace:
        return namespace[name], False
    if not on_class:
        raise AttributeError(f"{type(obj).__name__} object has no attribute {name!r}")
    if _has_get(class_value) and not isa(class_value, _PLAIN_METHOD_TYPES):
        return _bind_slot(obj, name, class_value)
    return class_value, False


def _lookup_on_class(klass: type, name: str) -> Tuple[Any, bool]:
    meta_value, on_meta = _find_in_mro(type(klass), name)
    if on_meta and _has_get(meta_value) and _is_data_descriptor(meta_value):
        return _bind_slot(klass, name, meta_value)
    value, found = _find_in_mro(klass, name)
    if found:
        # Class attributes are shown as stored: property objects, functions, and
        # classmethod or staticmethod wrappers; getattr would only bind them.
        return value, False
    if on_meta:
        if _has_get(meta_value) and not isa(meta_value, _PLAIN_METHOD_TYPES):
            return _bind_slot(klass, name, meta_value)
        return meta_value, False
    raise AttributeError(f"class {klass.__name__} has no attribute {name!r}")


def _bind_slot(obj: Any, name: str, descriptor: Any) -> Tuple[Any, bool]:
    if _is_builtin_slot(descriptor):
        try:
            return descriptor.__get__(obj, type(obj)), False
        except AttributeError:
            message = f"slot {name!r} of {type(obj).__name__} is not set"
            raise AttributeError(message) from None
    return descriptor, True


def static_names(obj: Any) -> Iterator[str]:
    """Yield each attribute name of ``obj`` once, without calling ``__dir__``."""
    seen = set()
    sources = [instance_dict(obj)]
    if isa(obj, type):
        sources.extend(class_dict(base) for base in mro(obj))
    elif not isa(obj, types.ModuleType):
        sources.extend(class_dict(base) for base in mro(type(obj)))
    for namespace in sources:
        for name in list(namespace):
            if isa(name, str) and name not in seen:
                seen.add(name)
                yield name
