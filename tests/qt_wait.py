"""Helpers for GUI tests that wait on the running qasync loop for widgets to appear.

They live in their own module because test modules cannot import from conftest.py:
several conftest.py files share that module name, so which one `import conftest`
finds depends on the collection order.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable


async def wait_for_widget(finder: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `finder()` on the running loop until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = finder()
        if found:
            return found
        if loop.time() > deadline:
            raise TimeoutError(f"nothing found by {finder!r} within {timeout} s")
        await asyncio.sleep(0.01)


def visible_child(parent: Any, cls: type) -> Callable[[], Any]:
    """Return a finder for the first visible child of `parent` of type `cls`."""

    def find() -> Any:
        for child in parent.findChildren(cls):
            if child.isVisible():
                return child
        return None

    return find
