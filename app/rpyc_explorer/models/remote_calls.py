"""Explorer calls that cost one round trip each.

`RemoteSession.call(name, ...)` looks the method up on the remote root every time
(GETATTR, then CALL: two round trips). `CachedCalls` looks each method up once, keeps
the proxy of the bound method and calls it directly afterwards, so a directory page,
an object page or a console poll is one request and one reply.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CachedCalls:
    """Wraps a `RemoteSession`; `call` reuses the remote bound methods it looked up.

    Every other attribute (``machine``, ``conn``, ``run``, ``kind``...) is the
    session's own.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        self._methods: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    async def call(self, name: str, *args: Any) -> Any:
        """Call ``root.<name>(*args)`` off the GUI thread and return the result."""
        method = self._methods.get(name)
        if method is None:
            async with self._lock:
                method = self._methods.get(name)
                if method is None:
                    method = await self.session.run(getattr, self.session.root, name)
                    self._methods[name] = method
        return await self.session.run(method, *args)

    def release(self) -> None:
        """Drop the cached proxies, so the remote side can free its references."""
        self._methods.clear()
