"""The service that zero-deploy starts for RPyC Explorer.

`ExplorerService` is the classic SlaveService (the console needs full access to the
remote interpreter) plus the batched ``exposed_`` calls of `ExplorerMethods`: a directory
page, an object page, a completion list or a console poll is one remote call.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

from typing import Any

from rpyc_engine.services.classic import SlaveService
from rpyc_engine.services.explorer_methods import ExplorerMethods

__all__ = ["ExplorerService"]


class ExplorerService(ExplorerMethods, SlaveService):
    """Classic access plus one-call explorer pages; one instance per connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        SlaveService.__init__(self, *args, **kwargs)
        ExplorerMethods.__init__(self)

    def on_disconnect(self, conn: Any) -> None:
        self.close_explorer()
        SlaveService.on_disconnect(self, conn)
