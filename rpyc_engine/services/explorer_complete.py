"""Tab completion for the remote console, computed without side effects.

The text before the cursor ends in a dotted name such as ``os.path.jo``. The first part
is looked up in the console namespace and then in builtins; each further part with
`static_lookup`, so a property, ``__getattr__`` or ``__dir__`` never runs. When a part
is an unevaluated descriptor there is nothing safe to complete and the list is empty.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

import builtins
import keyword
import re
from typing import Any, Dict, Tuple

from rpyc_engine.services.explorer_static import static_lookup, static_names

MAX_CANDIDATES = 500
_DOTTED_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.?$")


def complete(namespace: Dict[str, Any], text: str) -> Tuple[int, tuple]:
    """Return ``(start, candidates)`` for the dotted name that ends ``text``.

    ``start`` is the offset in ``text`` where the word being completed begins; each
    candidate replaces ``text[start:]``. Private names are offered only once the user
    has typed a leading underscore.
    """
    match = _DOTTED_TAIL.search(text)
    if match is None:
        return (len(text), ())
    parts = match.group(0).split(".")
    prefix = parts[-1]
    start = len(text) - len(prefix)
    if len(parts) == 1:
        names = set(namespace) | set(vars(builtins)) | set(keyword.kwlist)
    else:
        owner = _resolve(namespace, parts[:-1])
        if owner is None:
            return (start, ())
        names = set(static_names(owner))
    if not prefix.startswith("_"):
        names = {name for name in names if not name.startswith("_")}
    found = sorted(name for name in names if name.startswith(prefix))
    return (start, tuple(found[:MAX_CANDIDATES]))


def _resolve(namespace: Dict[str, Any], parts: list) -> Any:
    head = parts[0]
    if head in namespace:
        value = namespace[head]
    elif head in vars(builtins):
        value = vars(builtins)[head]
    else:
        return None
    for part in parts[1:]:
        try:
            value, is_descriptor = static_lookup(value, part)
        except AttributeError:
            return None
        if is_descriptor:
            return None
    return value
