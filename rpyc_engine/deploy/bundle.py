"""The server part: the engine's modules that a deployed server needs, as one blob.

The bundle contains every ``.py`` file of ``rpyc_engine`` except the client-only parts
(`EXCLUDED`): the asyncio front end and driver, and ``deploy/`` apart from the two modules
the remote side runs (``mux.py`` and ``remote.py``) and an empty ``deploy/__init__.py``.
The blob is a ``marshal``-ed dict ``{"rpyc_engine/…/name.py": source bytes}``, compressed
with zlib, so the remote bootstrap unpacks it with built-in modules only. The same sources
give the same bytes. The built bundle is cached in memory and rebuilt when a source file
changes.
"""

from __future__ import annotations

import logging
import marshal
import os
import threading
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_NAME = PACKAGE_ROOT.name
EXCLUDED = ("aio.py", "drivers/asyncio.py", "deploy/")
DEPLOY_INCLUDED = ("deploy/mux.py", "deploy/remote.py")
DEPLOY_STUB = "deploy/__init__.py"

_cache_lock = threading.Lock()
_cache: Optional[Tuple[Tuple, bytes]] = None


def server_part_files() -> List[str]:
    """Return the package-relative paths of the server part, sorted (stub excluded)."""
    selected = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        if "__pycache__" in relative:
            continue
        if relative in DEPLOY_INCLUDED:
            selected.append(relative)
        elif not any(
            relative == rule or (rule.endswith("/") and relative.startswith(rule))
            for rule in EXCLUDED
        ):
            selected.append(relative)
    return selected


def _signature(files: List[str]) -> Tuple:
    stats = []
    for relative in files:
        stat = os.stat(PACKAGE_ROOT / relative)
        stats.append((relative, stat.st_mtime_ns, stat.st_size))
    return tuple(stats)


def _build(files: List[str]) -> bytes:
    contents: Dict[str, bytes] = {
        f"{PACKAGE_NAME}/{relative}": (PACKAGE_ROOT / relative).read_bytes()
        for relative in files
    }
    contents[f"{PACKAGE_NAME}/{DEPLOY_STUB}"] = (
        b'"""Remote side of zero-deploy (bundle stub)."""\n'
    )
    # Format 2 has no back-references, so equal sources always give equal bytes, and
    # every Python 3 reads it.
    return zlib.compress(marshal.dumps(dict(sorted(contents.items())), 2), 9)


def server_bundle() -> bytes:
    """Return the bundle of the server part, building it on first use or change."""
    global _cache
    files = server_part_files()
    signature = _signature(files)
    with _cache_lock:
        if _cache is not None and _cache[0] == signature:
            return _cache[1]
        data = _build(files)
        _cache = (signature, data)
    logger.debug("built server bundle: %d files, %d bytes", len(files) + 1, len(data))
    return data
