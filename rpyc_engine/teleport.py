"""Function teleportation: move a plain function to the peer as bytecode.

A function is exported as the brine-dumpable 5-tuple that stock RPyC 6 uses on the
wire, ``(name, module, defaults, kwdefaults_pairs, code_tuple)``, and rebuilt on the
other side with ``types.CodeType``. The code tuple is the code object's constructor
arguments in the exporting interpreter's order:

* CPython 3.11 and newer: 18 fields, ``argcount, posonlyargcount, kwonlyargcount,
  nlocals, stacksize, flags, code, consts, names, varnames, filename, name, qualname,
  firstlineno, linetable, exceptiontable, freevars, cellvars``;
* CPython 3.8 to 3.10: 16 fields, without ``qualname`` and ``exceptiontable``, with
  ``co_lnotab`` (3.8, 3.9) or ``co_linetable`` (3.10) in the ``linetable`` slot.

Nested code objects among the constants travel as ``(CODE_MAGIC, code_tuple)``.

Bytecode is specific to one CPython minor version, and running foreign bytecode can
crash the interpreter, so the importer rejects a tuple whose layout or declared version
differs from its own. This module is part of the server side: standard library only,
CPython 3.8+. It never imports ``rpyc``.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable, Dict, Optional, Tuple

from rpyc_engine.protocol import brine

__all__ = [
    "CODE_MAGIC",
    "TeleportError",
    "export_function",
    "import_function",
    "local_python_version",
]

#: Marker that stock RPyC puts in front of a nested code tuple (a wire fact).
CODE_MAGIC = "MAg1c J0hNNzo0hn ZqhuBP17LQk8"

_FIELDS_311 = (
    "argcount",
    "posonlyargcount",
    "kwonlyargcount",
    "nlocals",
    "stacksize",
    "flags",
    "code",
    "consts",
    "names",
    "varnames",
    "filename",
    "name",
    "qualname",
    "firstlineno",
    "linetable",
    "exceptiontable",
    "freevars",
    "cellvars",
)
_FIELDS_38 = tuple(f for f in _FIELDS_311 if f not in ("qualname", "exceptiontable"))

# The CPython versions that produce a code tuple of each length.
_LAYOUT_VERSIONS = {18: "CPython 3.11 or newer", 16: "CPython 3.8 to 3.10"}


class TeleportError(ValueError):
    """Raised when a teleported function cannot run on the importing interpreter."""


def local_python_version() -> Tuple[int, int]:
    """Return this interpreter's ``(major, minor)`` version."""
    return (sys.version_info[0], sys.version_info[1])


def _local_fields() -> Tuple[str, ...]:
    return _FIELDS_311 if sys.version_info >= (3, 11) else _FIELDS_38


def _code_field(code: types.CodeType, field: str) -> Any:
    if field == "linetable" and sys.version_info < (3, 10):
        return code.co_lnotab
    return getattr(code, "co_" + field)


def _export_code(code: types.CodeType, func_name: str) -> tuple:
    consts = []
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            consts.append((CODE_MAGIC, _export_code(const, func_name)))
        elif brine.dumpable(const):
            consts.append(const)
        else:
            raise TypeError(
                f"cannot teleport {func_name!r}: its code contains the constant "
                f"{const!r:.80}, which brine cannot encode; build that value inside "
                "the function instead"
            )
    fields = []
    for field in _local_fields():
        fields.append(tuple(consts) if field == "consts" else _code_field(code, field))
    return tuple(fields)


def export_function(func: Callable[..., Any]) -> tuple:
    """Export a plain function as the stock RPyC teleport tuple.

    Args:
        func: a Python function without closure cells whose defaults and constants
            are all brine-dumpable (None, numbers, str, bytes, tuples of those...).

    Returns:
        ``(name, module, defaults, kwdefaults_pairs, code_tuple)``, brine-dumpable.

    Raises:
        TypeError: ``func`` is not a plain function, is a closure, or has a default or
            constant that brine cannot encode.
    """
    if not isinstance(func, types.FunctionType):
        raise TypeError(
            f"cannot teleport {func!r:.80}: expected a plain Python function, "
            f"got {type(func).__name__}"
        )
    name = func.__name__
    if func.__closure__:
        free = ", ".join(func.__code__.co_freevars)
        raise TypeError(
            f"cannot teleport {name!r}: it is a closure over {free}; pass those "
            "values as arguments or define the function at module level"
        )
    defaults = func.__defaults__
    if not brine.dumpable(defaults):
        raise TypeError(
            f"cannot teleport {name!r}: its defaults {defaults!r:.80} are not all "
            "brine-dumpable; use None as the default and build the value inside"
        )
    kwdefaults = None
    if func.__kwdefaults__ is not None:
        kwdefaults = tuple(func.__kwdefaults__.items())
        if not brine.dumpable(kwdefaults):
            raise TypeError(
                f"cannot teleport {name!r}: its keyword-only defaults "
                f"{func.__kwdefaults__!r:.80} are not all brine-dumpable"
            )
    code_tuple = _export_code(func.__code__, name)
    return (name, func.__module__, defaults, kwdefaults, code_tuple)


def _check_layout(code_tuple: tuple, python_version: Optional[tuple]) -> None:
    local = local_python_version()
    local_text = f"CPython {local[0]}.{local[1]}"
    if python_version is not None and tuple(python_version)[:2] != local:
        major, minor = tuple(python_version)[:2]
        sender = f"CPython {major}.{minor}"
        raise TeleportError(
            f"cannot import a function teleported from {sender} into {local_text}: "
            "bytecode does not travel between Python minor versions; run the same "
            "minor version on both sides or send source text to execute() instead"
        )
    expected = len(_local_fields())
    if not isinstance(code_tuple, tuple) or len(code_tuple) != expected:
        found = len(code_tuple) if isinstance(code_tuple, tuple) else type(code_tuple)
        sender = _LAYOUT_VERSIONS.get(found, "an unknown CPython version")  # type: ignore[arg-type]
        raise TeleportError(
            f"cannot import a function teleported from {sender} ({found} code fields) "
            f"into {local_text} ({expected} code fields): bytecode does not travel "
            "between Python minor versions; run the same minor version on both sides"
        )


def _import_code(code_tuple: tuple, python_version: Optional[tuple]) -> types.CodeType:
    _check_layout(code_tuple, python_version)
    fields = dict(zip(_local_fields(), code_tuple))
    consts = []
    for const in fields["consts"]:
        is_nested = (
            isinstance(const, tuple) and len(const) == 2 and const[0] == CODE_MAGIC
        )
        consts.append(_import_code(const[1], python_version) if is_nested else const)
    fields["consts"] = tuple(consts)
    return types.CodeType(*(fields[name] for name in _local_fields()))


def import_function(
    function_tuple: tuple,
    globals: Optional[Dict[str, Any]] = None,
    def_: bool = True,
    python_version: Optional[tuple] = None,
) -> types.FunctionType:
    """Rebuild a function exported by :func:`export_function` or by stock RPyC.

    Args:
        function_tuple: ``(name, module, defaults, kwdefaults_pairs, code_tuple)``.
        globals: the function's global namespace. ``None`` uses the namespace of the
            module named in the tuple, or of ``__main__`` when that module cannot be
            imported here. A mapping that is not a ``dict`` (such as a proxy) is copied
            into a new ``dict``, so the function does not see later changes to it.
        def_: also store the function under its name in ``globals``.
        python_version: the exporting interpreter's ``(major, minor)``; when given it
            must equal this interpreter's. Stock clients do not send it, so then only
            the code tuple's layout is checked.

    Returns:
        The new function.

    Raises:
        TeleportError: the code comes from a different Python minor version.
    """
    name, module_name, defaults, kwdefaults, code_tuple = function_tuple
    if globals is None:
        try:
            module = __import__(module_name, None, None, ["*"])
        except ImportError:
            module = sys.modules["__main__"]
        globals = module.__dict__
    elif type(globals) is not dict:
        globals = dict(globals.items())
    globals.setdefault("__builtins__", __builtins__)
    code = _import_code(code_tuple, python_version)
    func = types.FunctionType(code, globals, name, defaults)
    if kwdefaults is not None:
        func.__kwdefaults__ = {key: value for key, value in kwdefaults}
    if def_:
        globals[name] = func
    return func
