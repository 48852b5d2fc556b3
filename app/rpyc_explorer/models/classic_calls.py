"""Explorer calls on a classic server that does not run our ExplorerService.

A classic root (stock rpyc's SlaveService, or ours) runs any code it is sent, so the
first call sends the source of the explorer helper modules with ``root.execute`` and
builds one `ExplorerMethods` in the classic namespace. From then on each explorer call
is one call on a proxy of that object's bound method, the same single round trip as
on the ExplorerService. The console shares the classic namespace.

The helpers need only the standard library and CPython 3.8+, so they run on a server
where ``rpyc_engine`` is not installed. They are registered in the remote
``sys.modules`` under their own names, so their imports of each other resolve.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

from .remote_calls import CachedCalls

HELPER_MODULES = (
    "rpyc_engine.services.explorer_static",
    "rpyc_engine.services.explorer_objects",
    "rpyc_engine.services.explorer_files",
    "rpyc_engine.services.explorer_console",
    "rpyc_engine.services.explorer_complete",
    "rpyc_engine.services.explorer_methods",
)
INSTANCE_NAME = "_rpyc_explorer_methods"

# Runs in the classic namespace. Parent packages are created empty when the server
# does not have them, and the modules are loaded in dependency order.
_INSTALL = """
import sys as _sys, types as _types
for _name, _source in _rpyc_explorer_sources:
    _parts = _name.split(".")
    for _depth in range(1, len(_parts)):
        _package = ".".join(_parts[:_depth])
        if _package not in _sys.modules:
            _module = _types.ModuleType(_package)
            _module.__path__ = []
            _sys.modules[_package] = _module
    if _name not in _sys.modules or not hasattr(_sys.modules[_name], "__file__"):
        _module = _types.ModuleType(_name)
        _module.__file__ = "<rpyc-explorer %s>" % _name
        _sys.modules[_name] = _module
        exec(compile(_source, _module.__file__, "exec"), _module.__dict__)
{instance} = _sys.modules["rpyc_engine.services.explorer_methods"].ExplorerMethods(
    globals()
)
del _rpyc_explorer_sources
""".replace("{instance}", INSTANCE_NAME)


def helper_sources() -> tuple[tuple[str, str], ...]:
    """Return ``(module name, source)`` for each helper module, in load order."""
    return tuple(
        (name, inspect.getsource(importlib.import_module(name)))
        for name in HELPER_MODULES
    )


class ClassicCalls(CachedCalls):
    """`CachedCalls` for a classic session: methods of a remote ExplorerMethods.

    The helpers are installed on the first call, and the call named ``X`` runs
    their method ``exposed_X``.
    """

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._methods_object: Any = None
        self._install_lock = asyncio.Lock()

    async def call(self, name: str, *args: Any) -> Any:
        method = self._methods.get(name)
        if method is None:
            target = await self._installed()
            method = await self.session.run(getattr, target, "exposed_" + name)
            self._methods[name] = method
        return await self.session.run(method, *args)

    async def _installed(self) -> Any:
        async with self._install_lock:
            if self._methods_object is None:
                self._methods_object = await self.session.run(self._install)
            return self._methods_object

    def _install(self) -> Any:
        root = self.session.root
        namespace = root.namespace
        # Already installed by an earlier tab on the same connection: reuse it.
        if INSTANCE_NAME not in namespace:
            namespace["_rpyc_explorer_sources"] = helper_sources()
            root.execute(_INSTALL)
        return namespace[INSTANCE_NAME]

    def release(self) -> None:
        super().release()
        self._methods_object = None
