"""Classic mode services: the root that runs any code, and the client that drives it.

.. warning::
   Classic mode gives full control of the machine, as the user running the server,
   to anyone who can connect: ``execute`` and ``eval`` run arbitrary code, every
   attribute of every object is reachable, and pickles are accepted. It has no
   authentication of its own. Serve it only on loopback, on a Unix socket that only
   its owner can open, over stdin/stdout, through an SSH tunnel, or behind an
   authenticator (TLS with client certificates). Nothing in this package starts a
   classic server on a reachable address by default, and the command line rejects
   such an address unless ``--i-understand-classic-is-full-access`` is given.

* ``SlaveService`` is the classic server root. It serves the stock classic client's
  requests: ``execute(text)``, ``eval(text)``, ``getmodule(name)``, ``getconn()``
  and the ``namespace`` dict, all under their plain names. Its ``on_connect``
  relaxes its own connection's config the way stock rpyc 6 does: every attribute,
  setattr, delattr and pickle allowed, custom exception classes imported and
  instantiated.
* ``MasterService`` is the client side: on connect it installs ``conn.modules``,
  ``conn.eval``, ``conn.execute``, ``conn.namespace``, ``conn.builtins`` (alias
  ``conn.builtin``) and ``conn.teleport`` from the peer's classic root.
* ``ClassicService`` is both at once (what ``rpyc_engine.classic.connect`` uses,
  like stock). ``ClassicClient`` is a master that exposes nothing.

The root's id_pack name is this module's class name. Stock clients INSPECT it and
find the same five names. Stock clients' ``conn.teleport`` and
``rpyc.classic.deliver`` import ``rpyc.utils.teleportation`` and ``rpyc.lib.compat``
on the server: when rpyc is not installed there, ``getmodule`` serves this engine's
equivalents under those names. ``rpyc.classic.pm`` does not work against this
server, because the server connection keeps no ``_last_traceback``.

Standard library only, CPython 3.8+. Never imports ``rpyc``.
"""

from __future__ import annotations

import importlib
import logging
import pickle  # noqa: F401  (the stand-in for rpyc.lib.compat.pickle, see below)
import types
from functools import partial
from typing import Any, Dict, Union

from rpyc_engine.services.base import Service, VoidService

__all__ = [
    "CLASSIC_CONFIG",
    "ClassicClient",
    "ClassicService",
    "MasterService",
    "ModuleNamespace",
    "SlaveService",
]

_log = logging.getLogger(__name__)

#: Config changes a classic root applies to its own connection (stock rpyc 6 values).
CLASSIC_CONFIG: Dict[str, bool] = {
    "allow_all_attrs": True,
    "allow_pickle": True,
    "allow_getattr": True,
    "allow_setattr": True,
    "allow_delattr": True,
    "allow_exposed_attrs": False,
    "import_custom_exceptions": True,
    "instantiate_custom_exceptions": True,
    "instantiate_oldstyle_exceptions": True,
}

# Stock classic clients import these rpyc modules on the server: conn.teleport calls
# rpyc.utils.teleportation.import_function, and classic.deliver calls
# rpyc.lib.compat.pickle.loads. When rpyc is not installed here, getmodule() serves
# modules with the same names instead (this module has a ``pickle`` attribute).
_STOCK_MODULE_STANDINS = {
    "rpyc.utils.teleportation": "rpyc_engine.teleport",
    "rpyc.lib.compat": __name__,
}


def _import_module(name: Union[str, tuple]) -> types.ModuleType:
    if isinstance(name, tuple):
        name = ".".join(name)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        standin = _STOCK_MODULE_STANDINS.get(name)
        missing = str(exc.name or "")
        if standin is None or not (missing == "rpyc" or missing.startswith("rpyc.")):
            raise
        _log.debug("getmodule(%r): rpyc is not installed, serving %s", name, standin)
        return importlib.import_module(standin)


class SlaveService(Service):
    """The classic root: runs code and imports modules for the peer.

    A server given this class creates one instance per connection, so each connection
    has its own ``namespace``. A server given an instance shares it between clients.
    """

    def __init__(self) -> None:
        self._conn: Any = None
        self.namespace: Dict[str, Any] = {}

    def on_connect(self, conn: Any) -> None:
        """Remember the connection and relax its config to classic mode."""
        self._conn = conn
        conn.update_config(**CLASSIC_CONFIG)
        super().on_connect(conn)

    def execute(self, text: str) -> None:
        """Run ``text`` with ``exec`` in ``namespace``."""
        exec(text, self.namespace)

    def eval(self, text: str) -> Any:
        """Return ``eval(text)`` evaluated in ``namespace``."""
        return eval(text, self.namespace)

    def getmodule(self, name: Union[str, tuple]) -> types.ModuleType:
        """Import and return module ``name`` (a tuple of parts is joined with dots)."""
        return _import_module(name)

    def getconn(self) -> Any:
        """Return this side's connection object."""
        return self._conn


class ModuleNamespace:
    """``conn.modules``: remote modules by attribute or item, cached per connection.

    ``modules.os`` and ``modules["os.path"]`` call the peer's ``getmodule``;
    ``"json" in modules`` checks on the peer whether the module can be imported, without
    importing it.
    """

    def __init__(self, getmodule: Any) -> None:
        self._getmodule = getmodule
        self._cache: Dict[str, Any] = {}
        for name in ("builtins", "importlib.util"):
            self._cache[name] = getmodule(name)

    def __getitem__(self, name: str) -> Any:
        module = self._cache.get(name)
        if module is None:
            module = self._getmodule(name)
            self._cache[name] = module
        return module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except ImportError as exc:
            raise AttributeError(
                f"remote module {name!r} cannot be imported: {exc}"
            ) from exc

    def __contains__(self, name: object) -> bool:
        finder = self._cache["importlib.util"]._find_spec_from_path
        return finder(name) is not None

    def __repr__(self) -> str:
        return f"<ModuleNamespace cached={sorted(self._cache)}>"


class MasterService(Service):
    """Client side of classic mode: installs the helpers on the connection."""

    def on_connect(self, conn: Any) -> None:
        """Fetch the peer's classic root and install ``conn.modules`` and friends."""
        super().on_connect(conn)
        install_classic_helpers(conn, conn.root)


def install_classic_helpers(conn: Any, slave: Any) -> None:
    """Install the classic helpers (``modules``, ``eval``, ``teleport``...) on ``conn``.

    Args:
        conn: the connection whose peer serves a classic root.
        slave: the peer's classic root (``conn.root``), or any object with the same
            ``getmodule``, ``eval``, ``execute`` and ``namespace``.
    """
    from rpyc_engine.classic import teleport_function

    modules = ModuleNamespace(slave.getmodule)
    conn.modules = modules
    conn.eval = slave.eval
    conn.execute = slave.execute
    conn.namespace = slave.namespace
    conn.builtins = modules.builtins
    conn.builtin = conn.builtins
    conn.teleport = partial(teleport_function, conn)


class ClassicService(MasterService, SlaveService):
    """Both roles: a classic root for the peer, and the classic helpers on ``conn``.

    Both sides relax their config, so each gives the other full control.
    """


class _NoSlave(VoidService):
    # Same names as the classic root, all None, so a peer's classic client sees the
    # shape it expects but can do nothing with it.
    exposed_namespace = None
    exposed_execute = None
    exposed_eval = None
    exposed_getmodule = None
    exposed_getconn = None


class ClassicClient(MasterService, _NoSlave):
    """A classic client that exposes nothing to the server."""
