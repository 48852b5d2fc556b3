"""Awaiting an ``AsyncResult`` on any asyncio event loop, from any completing thread.

On a connection whose driver reads by itself (``reads_by_itself``, the asyncio driver)
the await only waits for the completion. On a threaded connection, which reads only
while a thread waits, the await runs ``result.wait`` in the loop's default executor.

A result is completed by whichever thread dispatches its reply. To hand completions to
the loop, each loop gets one ``_LoopWaker``: completions are queued under a lock and the
loop is woken with one ``call_soon_threadsafe`` per batch, not per reply, so a burst of
replies costs the loop one wake-up. Expiries share one timer handle per loop, not an
``asyncio.wait_for`` task per call.

Standard library only, CPython 3.8+ (part of the server bundle, like ``async_result``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from rpyc_engine.protocol.errors import AsyncResultTimeout

if TYPE_CHECKING:
    from rpyc_engine.async_result import AsyncResult

__all__ = ["await_result"]

_COMPACT_AT = 1024  # heap size at which (and at whose multiples) done entries go

_wakers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_wakers_lock = threading.Lock()


class _LoopWaker:
    """Resolves futures of one loop from other threads, in batches, and expires them.

    Expiries share one timer handle on the loop (for the earliest deadline) instead of
    one per call: qasync turns every ``call_at`` into a Qt timer that lives until it
    fires, even when cancelled.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak, because the waker is the value of a weak dictionary keyed by the loop.
        self._loop_ref = weakref.ref(loop)
        self._lock = threading.Lock()
        self._futures: List[asyncio.Future] = []
        self._deadlines: List[Tuple[float, int, asyncio.Future]] = []  # a heap
        self._order = itertools.count()  # ties in the heap never compare futures
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_when = math.inf

    def wake(self, future: asyncio.Future) -> None:
        """Queue ``future`` to be set to True on the loop; callable from any thread."""
        with self._lock:
            self._futures.append(future)
            if len(self._futures) > 1:
                return  # a wake-up is already scheduled
        loop = self._loop_ref()
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._resolve_all)
        except RuntimeError:
            pass  # the loop is closed, so no coroutine awaits these futures

    def _resolve_all(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(True)

    def expire_at(
        self, loop: asyncio.AbstractEventLoop, when: float, future: Any
    ) -> None:
        """Set ``future`` to False at loop time ``when`` unless done (on the loop)."""
        deadlines = self._deadlines
        if len(deadlines) >= _COMPACT_AT and len(deadlines) % _COMPACT_AT == 0:
            # Done futures wait in the heap until their deadline: drop them in bulk.
            deadlines[:] = [entry for entry in deadlines if not entry[2].done()]
            heapq.heapify(deadlines)
        heapq.heappush(deadlines, (when, next(self._order), future))
        if when < self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(when, self._expire_due, loop)
            self._timer_when = when

    def _expire_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_when = math.inf
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][2].done()):
            future = heapq.heappop(deadlines)[2]
            if not future.done():
                future.set_result(False)
        if deadlines:
            when = deadlines[0][0]
            self._timer = loop.call_at(when, self._expire_due, loop)
            self._timer_when = when


_last_waker: Any = None  # the most recently used waker, checked before the dictionary


def _waker_for(loop: asyncio.AbstractEventLoop) -> _LoopWaker:
    global _last_waker
    waker = _last_waker
    if waker is not None and waker._loop_ref() is loop:
        return waker
    with _wakers_lock:
        waker = _wakers.get(loop)
        if waker is None:
            waker = _wakers[loop] = _LoopWaker(loop)
    _last_waker = waker
    return waker


async def await_result(result: AsyncResult) -> Any:
    """Wait for ``result`` on the running loop; return its value or raise its error.

    Raises:
        AsyncResultTimeout: the expiry set with ``set_expiry`` passed without a reply.
        ConnectionClosed: the connection closed before the reply arrived.
        Exception: the peer's exception.
    """
    if not result._done and not getattr(result._conn._driver, "reads_by_itself", False):
        # A threaded connection reads only while some thread waits: wait on a worker.
        await asyncio.get_running_loop().run_in_executor(None, result.wait)
    if not result._done:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        waker = _waker_for(loop)
        result.add_callback(lambda _result: waker.wake(future))
        deadline = result._deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            waker.expire_at(loop, loop.time() + delay, future)
        await future
        if not result._done:
            raise AsyncResultTimeout(result.timeout_message(result._expiry))
    if result._is_error:
        raise result._value
    return result._value
