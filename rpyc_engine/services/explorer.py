"""The service that zero-deploy starts for RPyC Explorer.

`ExplorerService` is the classic SlaveService (the console needs full access to the
remote interpreter) plus the batched calls of `ExplorerMethods`: a directory page, an
object page, a completion list or a console poll is one remote call.

A classic root turns ``allow_exposed_attrs`` off for its connection, so the peer reaches
``exposed_list_dir`` only under its plain name; each ``exposed_X`` method is therefore
also bound as ``X``. The console shares the classic ``namespace`` with ``execute`` and
``eval``.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

from typing import Any

from rpyc_engine.services.classic import SlaveService
from rpyc_engine.services.explorer_methods import ExplorerMethods

__all__ = ["ExplorerService"]

_PREFIX = "exposed_"


class ExplorerService(ExplorerMethods, SlaveService):
    """Classic access plus one-call explorer pages; one instance per connection."""

    def __init__(self) -> None:
        SlaveService.__init__(self)
        ExplorerMethods.__init__(self, self.namespace)

    def on_disconnect(self, conn: Any) -> None:
        self.close_explorer()
        SlaveService.on_disconnect(self, conn)


for _name in [name for name in vars(ExplorerMethods) if name.startswith(_PREFIX)]:
    _plain = _name[len(_PREFIX) :]
    if hasattr(ExplorerService, _plain):
        raise TypeError(
            f"ExplorerMethods.{_name} would hide ExplorerService.{_plain}; "
            "rename the method"
        )
    setattr(ExplorerService, _plain, getattr(ExplorerMethods, _name))
del _name, _plain
