"""Services: the root objects a connection offers its peer.

``base`` contains ``Service``, ``VoidService``, ``exposed`` and ``restricted``; the classic
services live in ``rpyc_engine.services.classic`` and the explorer service in
``rpyc_engine.services.explorer``.
"""

from rpyc_engine.services.base import (
    Restricted,
    Service,
    VoidService,
    exposed,
    restricted,
)

__all__ = ["Restricted", "Service", "VoidService", "exposed", "restricted"]
