"""Object helpers of the explorer service: object pages, details, evaluate.

Browsing is static. Names come from the instance ``__dict__`` and the class dictionaries
along the MRO, and values from ``inspect.getattr_static``, so properties, descriptors,
``__getattr__`` and ``__dir__`` never run while the user browses. Only `evaluate` runs a
property, and only when the user asks for it. A short repr still calls the object's
``__repr__``: reprs are how an explorer shows values, and they are capped.

An object is named by a root (``"modules"`` for ``sys.modules`` or ``"console"`` for the
console namespace) and a path of steps, each a 2-tuple:

* ``("attr", name)``: a static attribute lookup;
* ``("key", key)``: a dict key that brine can carry (str, int, tuple, ...);
* ``("keyat", n)``: the n-th key of a dict whose key cannot travel;
* ``("item", n)``: the n-th item of a list, tuple, set or frozenset;
* ``("value", name)``: the value `evaluate` stored for the attribute ``name``.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

import inspect
import keyword
import reprlib
import sys
import threading
import types
from typing import Any, Dict, List, Optional, Tuple

from rpyc_engine.services.explorer_static import (
    is_descriptor_slot,
    isa,
    static_lookup,
    static_names,
)

REPR_LIMIT = 200
DETAIL_REPR_LIMIT = 64 * 1024
DOC_LIMIT = 64 * 1024
SOURCE_LIMIT = 256 * 1024
MAX_PAGE = 2000

SHOW_PRIVATE = 1
SHOW_DUNDER = 2
SHOW_CALLABLES = 4
SHOW_ALL = SHOW_PRIVATE | SHOW_DUNDER | SHOW_CALLABLES

_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)
_METHOD_TYPES = (
    types.MethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.MethodWrapperType,
    staticmethod,
    classmethod,
)
_CONTAINERS = (dict, list, tuple, set, frozenset)
_SIMPLE = (type(None), bool, int, float, complex, str, bytes)

_short = reprlib.Repr()
_short.maxstring = 120
_short.maxother = 120
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 8


class ResolveError(Exception):
    """A path step does not lead to an object (missing name, unevaluated property)."""


def cap(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters and append how many were left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters not shown]"


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """Return a one-line repr of at most ``limit`` characters; errors become text.

    NOTE: reprlib abbreviates builtin containers itself, but for other types it calls
    the full ``repr()`` before cutting it, so a slow ``__repr__`` slows the page.
    """
    try:
        text = _short.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the page
        text = f"<repr failed: {type(exc).__name__}: {exc}>"
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def type_name(value: Any) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", kind.__name__)
    return name if module in ("builtins", None, "") else f"{module}.{name}"


def classify(value: Any, descriptor: bool) -> str:
    """Name the kind shown in the tree: module, class, function, property, data..."""
    if descriptor:
        return "property"
    if isa(value, types.ModuleType):
        return "module"
    if isa(value, type):
        return "class"
    if isa(value, _FUNCTION_TYPES):
        return "function"
    if isa(value, _METHOD_TYPES):
        return "method"
    if isa(value, _CONTAINERS):
        return "container"
    return "data"


def _is_callable(value: Any, descriptor: bool) -> bool:
    if descriptor:
        return False
    if isa(value, (staticmethod, classmethod)):
        return True
    # callable() reads the type's tp_call slot and runs no Python code.
    return callable(value)


def has_children(value: Any, descriptor: bool) -> bool:
    """Tell whether expanding the row can show anything (never runs user code)."""
    if descriptor or isa(value, _SIMPLE):
        return False
    if isa(value, _CONTAINERS):
        return type(value).__len__(value) > 0
    return True


class ObjectBrowser:
    """Resolves object paths and serves pages, details and evaluation."""

    def __init__(self, namespace: Dict[str, Any]) -> None:
        self.namespace = namespace
        self._evaluated: Dict[tuple, Any] = {}
        self._lock = threading.Lock()

    # -- resolution -------------------------------------------------------------

    def root_object(self, root: str) -> Any:
        if root == "modules":
            return sys.modules
        if root == "console":
            return self.namespace
        raise ResolveError(f"unknown root {root!r}; expected 'modules' or 'console'")

    def resolve(self, root: str, path: tuple) -> Tuple[Any, bool]:
        """Return ``(object, is_unevaluated_descriptor)`` for a root and a path."""
        value = self.root_object(root)
        descriptor = False
        for index, step in enumerate(path):
            if descriptor:
                raise ResolveError(
                    f"{path[index - 1][1]!r} is a property that has not been "
                    "evaluated; use Evaluate first"
                )
            kind, key = step
            if kind == "attr":
                value, descriptor = static_lookup(value, key)
            elif kind == "value":
                with self._lock:
                    stored = self._evaluated.get(
                        (root, tuple(path[: index + 1])), _MISSING
                    )
                if stored is _MISSING:
                    raise ResolveError(f"{key!r} was not evaluated; use Evaluate again")
                value = stored
            else:
                value = _child_item(value, kind, key)
        return value, descriptor

    # -- pages ------------------------------------------------------------------

    def page(
        self,
        root: str,
        path: tuple,
        offset: int,
        limit: int,
        flags: int,
        filter_text: str,
    ) -> Tuple[tuple, int, Optional[tuple]]:
        """Return ``(rows, total, error)``; a row is
        ``(name, kind, type_name, short_repr, has_children, callable, step)``."""
        limit = max(1, min(int(limit), MAX_PAGE))
        try:
            value, descriptor = self.resolve(root, tuple(path))
            if descriptor:
                raise ResolveError("a property has no children until it is evaluated")
            if isa(value, (list, tuple, set, frozenset)):
                # Items have no names to filter, so only the requested slice is built,
                # whatever the length of the sequence.
                return self._item_page(value, offset, limit)
            children = _child_steps(value)
            children = _filter(children, value, flags, filter_text)
        except Exception as exc:
            return ((), 0, _error(exc))
        rows = [
            self._row(value, label, step)
            for label, step in children[offset : offset + limit]
        ]
        return (tuple(rows), len(children), None)

    def _item_page(self, value: Any, offset: int, limit: int) -> tuple:
        total = type(value).__len__(value)
        brackets = "[]" if isa(value, (list, tuple)) else "{}"
        indexes = range(max(0, offset), min(total, offset + limit))
        rows = []
        if isa(value, (list, tuple)):
            base = list if isa(value, list) else tuple
            for index in indexes:
                item = base.__getitem__(value, index)
                label = brackets[0] + str(index) + brackets[1]
                rows.append(make_row(label, item, False, ("item", index)))
        else:
            base = set if isa(value, set) else frozenset
            for index, item in enumerate(base.__iter__(value)):
                if index >= indexes.stop:
                    break
                if index >= indexes.start:
                    label = brackets[0] + str(index) + brackets[1]
                    rows.append(make_row(label, item, False, ("item", index)))
        return (tuple(rows), total, None)

    def _row(self, parent: Any, label: str, step: tuple) -> tuple:
        try:
            if step[0] == "attr":
                value, descriptor = static_lookup(parent, step[1])
            else:
                value, descriptor = _child_item(parent, step[0], step[1]), False
        except Exception as exc:
            return (label, "error", "", f"<{exc}>", False, False, step)
        return make_row(label, value, descriptor, step)

    # -- details, evaluate, console --------------------------------------------

    def details(
        self, root: str, path: tuple
    ) -> Tuple[Optional[tuple], Optional[tuple]]:
        """Return ``((type, repr, doc, signature, source, file), error)``."""
        try:
            value, descriptor = self.resolve(root, tuple(path))
        except Exception as exc:
            return (None, _error(exc))
        return (describe(value, descriptor), None)

    def evaluate(
        self, root: str, path: tuple
    ) -> Tuple[Optional[tuple], Optional[tuple]]:
        """Run the attribute lookup at the end of ``path`` (properties included).

        Returns ``(row, error)``: the page row of the result, whose step
        ``("value", name)`` names the stored result from now on, so browsing it later
        does not run the property again.
        """
        path = tuple(path)
        if not path or path[-1][0] != "attr":
            return (None, ("error", "only an attribute can be evaluated", repr(path)))
        try:
            parent, descriptor = self.resolve(root, path[:-1])
            if descriptor:
                raise ResolveError("evaluate the parent property first")
            value = getattr(parent, path[-1][1])
        except Exception as exc:
            return (None, _error(exc))
        step = ("value", path[-1][1])
        with self._lock:
            if len(self._evaluated) >= 256:
                self._evaluated.pop(next(iter(self._evaluated)))
            self._evaluated[(root, path[:-1] + (step,))] = value
        return (make_row(path[-1][1], value, False, step), None)

    def send_to_console(
        self, root: str, path: tuple, name: str
    ) -> Tuple[str, Optional[tuple]]:
        """Bind the object at ``path`` to ``name`` there.

        ``name`` is used only when it is an identifier, not a keyword and not bound
        yet, so sending never replaces a console variable. Otherwise the object gets
        the first free ``objN``.
        """
        try:
            value, descriptor = self.resolve(root, tuple(path))
        except Exception as exc:
            return ("", _error(exc))
        if descriptor:
            return ("", ("error", "evaluate the property before sending it", str(path)))
        if (
            not name.isidentifier()
            or keyword.iskeyword(name)
            or name in self.namespace
        ):
            number = 1
            while f"obj{number}" in self.namespace:
                number += 1
            name = f"obj{number}"
        self.namespace[name] = value
        return (name, None)


_MISSING = object()


def make_row(label: str, value: Any, descriptor: bool, step: tuple) -> tuple:
    """Build ``(name, kind, type_name, short_repr, has_children, callable, step)``."""
    shown = f"<{type_name(value)}: not evaluated>" if descriptor else short_repr(value)
    return (
        label,
        classify(value, descriptor),
        type_name(value),
        shown,
        has_children(value, descriptor),
        _is_callable(value, descriptor),
        step,
    )


def _error(exc: BaseException) -> tuple:
    return (type(exc).__name__, str(exc), "")


def _child_item(value: Any, kind: str, key: Any) -> Any:
    if kind == "key" and isa(value, dict):
        return dict.__getitem__(value, key)
    if kind == "keyat" and isa(value, dict):
        return dict.__getitem__(value, _nth(dict.keys(value), key))
    if kind == "item" and isa(value, (list, tuple)):
        base = list if isa(value, list) else tuple
        return base.__getitem__(value, key)
    if kind == "item" and isa(value, (set, frozenset)):
        base = set if isa(value, set) else frozenset
        return _nth(base.__iter__(value), key)
    raise ResolveError(f"cannot follow step {(kind, key)!r} on a {type_name(value)}")


def _nth(iterable: Any, index: int) -> Any:
    for position, item in enumerate(iterable):
        if position == index:
            return item
    raise ResolveError(f"item {index} no longer exists; refresh the parent")


def _child_steps(value: Any) -> List[Tuple[str, tuple]]:
    """List ``(label, step)`` pairs for the keys or attributes of ``value``, sorted.

    Sequences and sets are paged by `ObjectBrowser._item_page` instead.
    """
    if isa(value, dict):
        steps = []
        for position, key in enumerate(list(dict.keys(value))):
            if isa(key, str):
                steps.append((key, ("key", key)))
            elif isa(key, _SIMPLE):
                steps.append((short_repr(key, 80), ("key", key)))
            else:
                steps.append((short_repr(key, 80), ("keyat", position)))
        steps.sort(key=lambda pair: (pair[0].lower(), pair[0]))
        return steps
    names = sorted(static_names(value), key=lambda name: (name.lower(), name))
    return [(name, ("attr", name)) for name in names]


def _filter(children: list, parent: Any, flags: int, text: str) -> list:
    text = text.lower()
    kept = []
    for label, step in children:
        if text and text not in label.lower():
            continue
        if step[0] in ("attr", "key") and isa(step[1], str):
            name = step[1]
            dunder = name.startswith("__") and name.endswith("__")
            if dunder and not flags & SHOW_DUNDER:
                continue
            if name.startswith("_") and not dunder and not flags & SHOW_PRIVATE:
                continue
        if not flags & SHOW_CALLABLES and step[0] == "attr":
            try:
                value, descriptor = static_lookup(parent, step[1])
            except Exception:
                value, descriptor = None, False
            if not descriptor and callable(value) and not isa(value, type):
                continue
        kept.append((label, step))
    return kept


def describe(value: Any, descriptor: bool) -> tuple:
    """Return ``(type, repr, doc, signature, source, file)``, each size-capped."""
    target = value
    if descriptor and isa(value, property) and value.fget is not None:
        target = value.fget
    if isa(target, (staticmethod, classmethod)):
        target = target.__func__
    if descriptor:
        shown = f"<{type_name(value)}: not evaluated; use Evaluate to run it>"
    else:
        shown = _full_repr(value)
    return (
        type_name(value),
        shown,
        cap(_doc(target), DOC_LIMIT),
        _signature(target),
        cap(_source(target), SOURCE_LIMIT),
        _file(target),
    )


def _full_repr(value: Any) -> str:
    try:
        return cap(repr(value), DETAIL_REPR_LIMIT)
    except Exception as exc:
        return f"<repr failed: {type(exc).__name__}: {exc}>"


def _doc(value: Any) -> str:
    doc, _ = _quiet_lookup(value, "__doc__")
    if isa(doc, str):
        return inspect.cleandoc(doc)
    if not callable(value):
        doc, _ = _quiet_lookup(type(value), "__doc__")
        if isa(doc, str):
            return inspect.cleandoc(doc)
    return ""


def _quiet_lookup(value: Any, name: str) -> Tuple[Any, bool]:
    try:
        return static_lookup(value, name)
    except Exception:
        return None, False


def _signature(value: Any) -> str:
    if not callable(value) or is_descriptor_slot(value):
        return ""
    try:
        return str(inspect.signature(value))
    except (TypeError, ValueError):
        return ""


def _source(value: Any) -> str:
    if not isa(value, (types.ModuleType, type, types.FunctionType, types.MethodType)):
        return ""
    try:
        return inspect.getsource(value)
    except (OSError, TypeError):
        return ""


def _file(value: Any) -> str:
    try:
        return inspect.getsourcefile(value) or inspect.getfile(value) or ""
    except TypeError:
        return ""
