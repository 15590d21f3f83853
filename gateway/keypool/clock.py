"""The pool's time: what it reads and what it waits on, as a parameter.

The in-process pool reads the event loop's monotonic clock and wakes its queue with the
loop's timers (:class:`LoopClock`). Tests and simulations give it a
:class:`ManualClock` instead and move time with :meth:`ManualClock.advance`: a lease
expires, a window slides and a cool-down ends exactly when the test says, with no sleep.
(The Redis pool reads Redis's own clock inside its scripts, so every replica sees one
time; see :mod:`gateway.keypool.redis_pool`.)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...

    def cancelled(self) -> bool: ...

    def when(self) -> float: ...


class Clock(Protocol):
    """Seconds on a monotonic scale, and a timer on that scale."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's clock and timers (``time.monotonic`` before it runs)."""

    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # set up before the loop runs
            return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_at(when, callback)


class _ManualTimer:
    __slots__ = ("_cancelled", "_when", "callback")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self._when, self.callback, self._cancelled = when, callback, False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def when(self) -> float:
        return self._when


class ManualClock:
    """A clock that moves only when told: :meth:`advance` runs the timers that fall due,
    in order, each at its own time."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> None:
        end = self._now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            if not timer.cancelled():
                timer.callback()
        self._now = end
