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

import importlib.util
import logging
import marshal
import os
import threading
import zlib
from pathlib import Path
from typing import Dict, List, Tuple

from rpyc_engine.deploy.bootstrap import MEMORY_PREFIX

logger = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_NAME = PACKAGE_ROOT.name
EXCLUDED = ("aio.py", "drivers/asyncio.py", "deploy/")
DEPLOY_INCLUDED = ("deploy/mux.py", "deploy/remote.py")
DEPLOY_STUB = "deploy/__init__.py"

_cache_lock = threading.Lock()
_cache: Dict[bool, Tuple[Tuple, bytes]] = {}


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


def _build_code(files: List[str]) -> bytes:
    # Compiled as the remote side would compile the source, so tracebacks and
    # __file__ read the same.
    contents = marshal.loads(zlib.decompress(_build(files)))
    # The source stays beside the code: tracebacks and inspect.getsource read it.
    code = {
        name: (compile(source, MEMORY_PREFIX + name, "exec", dont_inherit=True), source)
        for name, source in contents.items()
    }
    return zlib.compress(marshal.dumps(code), 6)


def local_magic() -> str:
    """Return this interpreter's bytecode magic number as hex (as the probe prints it)."""
    return importlib.util.MAGIC_NUMBER.hex()


def server_bundle(bytecode: bool = False) -> bytes:
    """Return the bundle of the server part, building it on first use or change.

    Args:
        bytecode: ship code objects compiled here instead of the source; only for a
            remote interpreter whose magic number equals `local_magic()`.
    """
    files = server_part_files()
    signature = (_signature(files), bytecode)
    with _cache_lock:
        cached = _cache.get(bytecode)
        if cached is not None and cached[0] == signature:
            return cached[1]
        data = _build_code(files) if bytecode else _build(files)
        _cache[bytecode] = (signature, data)
    logger.debug("built server bundle: %d files, %d bytes", len(files) + 1, len(data))
    return data


def prepare_bundles() -> None:
    """Build both bundles on a background thread, if not built yet.

    Called when a deploy starts, so the build (about 0.1 s for the bytecode) overlaps
    the SSH login instead of delaying the upload. `server_bundle` waits for it.
    """
    if len(_cache) == 2:
        return

    def build() -> None:
        for bytecode in (False, True):
            server_bundle(bytecode=bytecode)

    threading.Thread(target=build, name="deploy-bundle-build", daemon=True).start()
