"""Labs start a few at a time, in the order they were asked for.

At the bell a whole class asks for its labs within a second. Started all at
once on a small machine, every lab competes for the same cores, none becomes
ready within JupyterHub's timeouts, and most spawns fail. The spawner
(:class:`hub.spawner.ClassroomSpawner`) instead takes a :class:`Ticket` from
the hub's one :class:`StartQueue` before it starts a lab and gives it back
when the lab answers HTTP (or failed): at most ``parallel`` labs start at
once, the others wait, first come first served, with no timeout running while
they wait.

Two tiers: ``now`` is someone waiting for their lab (a student at the bell);
``ahead`` is a lab a teacher starts before the lesson. Every ``now`` ticket is
served before any ``ahead`` ticket, and at most ``ahead_parallel`` ``ahead``
labs start at once, so a class started ahead is staggered and leaves room for
the people who are actually waiting. :meth:`StartQueue.promote` moves a
ticket to ``now`` when its owner shows up.

Waiting people see their place and an estimate (:meth:`StartQueue.estimate`):
a replay of the queue with each start taking the recent average start time on
this machine (an exponential moving average of the measured starts, seeded by
``start_seconds``). Plain asyncio; the clock is a parameter.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from traitlets import Float, Integer, default
from traitlets.config import SingletonConfigurable

NOW = "now"
AHEAD = "ahead"
TIERS = (NOW, AHEAD)
# Weight of the latest start in the moving average of start times.
AVERAGE_WEIGHT = 0.3


@dataclass(eq=False)
class Ticket:
    """One lab's place in the queue, from asking until its lab answered."""

    name: str
    tier: str
    number: int  # arrival order, unique
    asked_at: float
    granted_at: float | None = None
    done_at: float | None = None
    _granted: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def waiting(self) -> bool:
        return self.granted_at is None and self.done_at is None

    @property
    def starting(self) -> bool:
        return self.granted_at is not None and self.done_at is None

    def order(self) -> tuple[int, int]:
        return (TIERS.index(self.tier), self.number)


@dataclass(frozen=True)
class Place:
    """What a waiting person is told: their place in line and how long it should take."""

    place: int  # 1 = next; 0 = starting now
    waiting: int  # everyone in line
    starting: int  # labs starting right now
    wait_s: float  # until this lab starts
    ready_s: float  # until this lab should answer


class StartQueue:
    """At most ``parallel`` labs starting at once; the rest wait in order."""

    def __init__(
        self,
        parallel: int,
        *,
        ahead_parallel: int = 1,
        start_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        if not 1 <= ahead_parallel:
            raise ValueError("ahead_parallel must be at least 1")
        self.parallel = parallel
        self.ahead_parallel = min(ahead_parallel, parallel)
        self.average_s = float(start_seconds)
        self.clock = clock
        self._numbers = itertools.count(1)
        self._waiting: list[Ticket] = []
        self._starting: list[Ticket] = []
        self._changed = asyncio.Event()
        self.version = 0  # counts changes, for watchers that were busy when one happened
        self.started_total = 0
        self.failed_total = 0
        # Names in the order their starts were granted (the latest thousand).
        self.granted: deque[str] = deque(maxlen=1000)

    # -- taking and giving back places ------------------------------------------------------

    def join(self, name: str, tier: str = NOW) -> Ticket:
        """Take a place at the end of ``tier``; granted at once when there is room."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, not {tier!r}")
        ticket = Ticket(name, tier, next(self._numbers), self.clock())
        self._waiting.append(ticket)
        self._grant()
        return ticket

    async def wait(self, ticket: Ticket) -> None:
        """Until ``ticket`` may start. Cancelled: the place is given up."""
        try:
            await ticket._granted.wait()
        except BaseException:
            self.leave(ticket)
            raise

    def leave(self, ticket: Ticket, *, ok: bool = False) -> None:
        """Give the place back: the lab answered (``ok``), failed, or was never started."""
        if ticket.done_at is not None:
            return
        now = self.clock()
        ticket.done_at = now
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        elif ticket in self._starting:
            self._starting.remove(ticket)
            assert ticket.granted_at is not None
            if ok:
                self.started_total += 1
                took = now - ticket.granted_at
                self.average_s += AVERAGE_WEIGHT * (took - self.average_s)
            else:
                self.failed_total += 1
        self._grant()
        self._notify()

    def promote(self, ticket: Ticket) -> None:
        """Its owner is waiting for it: serve it with the people who are waiting."""
        if ticket.tier != NOW and ticket.waiting:
            ticket.tier = NOW
            self._grant()
            self._notify()

    def _eligible(self) -> Ticket | None:
        if len(self._starting) >= self.parallel or not self._waiting:
            return None
        first = min(self._waiting, key=Ticket.order)
        if first.tier == AHEAD:
            ahead = sum(1 for t in self._starting if t.tier == AHEAD)
            if ahead >= self.ahead_parallel:
                return None
        return first

    def _grant(self) -> None:
        granted = False
        while (ticket := self._eligible()) is not None:
            self._waiting.remove(ticket)
            ticket.granted_at = self.clock()
            self._starting.append(ticket)
            self.granted.append(ticket.name)
            ticket._granted.set()
            granted = True
        if granted:
            self._notify()

    # -- what people are told ----------------------------------------------------------------

    @property
    def waiting(self) -> list[Ticket]:
        """The tickets in line, in the order they will start."""
        return sorted(self._waiting, key=Ticket.order)

    @property
    def starting(self) -> list[Ticket]:
        return list(self._starting)

    def place(self, ticket: Ticket) -> Place:
        return self._replay(ticket)

    def estimate(self, ticket: Ticket) -> float:
        """Seconds until ``ticket``'s lab should answer."""
        return self._replay(ticket).ready_s

    def _replay(self, ticket: Ticket) -> Place:
        """Play the queue forward with every start taking the average time."""
        now = self.clock()
        average = max(self.average_s, 0.1)
        line = self.waiting
        # (when a running start frees its place, its tier)
        running = [(max(average - (now - t.granted_at), 0.0), t.tier)
                   for t in self._starting if t.granted_at is not None]
        if ticket.starting:
            own = max(average - (now - (ticket.granted_at or now)), 0.0)
            return Place(0, len(line), len(self._starting), 0.0, own)
        if not ticket.waiting:
            return Place(0, len(line), len(self._starting), 0.0, 0.0)
        heap = list(running)
        heapq.heapify(heap)
        clock = 0.0
        for current in line:
            while True:
                starting = len(heap)
                ahead = sum(1 for _, tier in heap if tier == AHEAD)
                room = starting < self.parallel and (
                    current.tier == NOW or ahead < self.ahead_parallel
                )
                if room:
                    break
                if current.tier == AHEAD and starting < self.parallel:
                    # Room in general, but not for another start ahead: wait for one of those.
                    free, _ = min((f, t) for f, t in heap if t == AHEAD)
                    heap.remove((free, AHEAD))
                    heapq.heapify(heap)
                else:
                    free, _ = heapq.heappop(heap)
                clock = max(clock, free)
            if current is ticket:
                return Place(line.index(ticket) + 1, len(line), len(self._starting),
                             clock, clock + average)
            heapq.heappush(heap, (clock + average, current.tier))
        raise AssertionError("a waiting ticket is in the line")  # pragma: no cover

    # -- watching ----------------------------------------------------------------------------

    def _notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, timeout: float, since: int | None = None) -> bool:
        """Until the queue changes (True) or ``timeout`` seconds pass (False).

        ``since``: a :attr:`version` seen before; a change after it returns at once.
        """
        if since is not None and since != self.version:
            return True
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def snapshot(self) -> dict[str, object]:
        """The queue as the hub's API shows it."""
        return {
            "parallel": self.parallel,
            "ahead_parallel": self.ahead_parallel,
            "average_start_s": round(self.average_s, 1),
            "starting": [t.name for t in self._starting],
            "waiting": [t.name for t in self.waiting],
            "granted": list(self.granted),
            "started": self.started_total,
            "failed": self.failed_total,
        }


class LabStarts(SingletonConfigurable):
    """The hub's one start queue, configured like every other part of the hub.

    The spawners of all users share it (``LabStarts.instance(config=...)``), and
    so does the teachers' "start my class" page.
    """

    parallel = Integer(
        config=True,
        help="""
        Labs starting at the same time; the others wait in line, in order.

        Default: the number of CPU cores. A lab's start is mostly one busy
        Python process (about 2-4 CPU seconds here, see benchmarks/RESULTS.md),
        so more at once only makes each of them slower and the hub less
        responsive. Waiting in line has no timeout.
        """,
    )

    @default("parallel")
    def _default_parallel(self) -> int:
        return max(1, os.cpu_count() or 1)

    ahead_parallel = Integer(
        1,
        config=True,
        help="""
        Labs a teacher started ahead of the lesson that start at the same time.

        Started ahead, a class starts one lab after another (staggered), and
        anyone who is actually waiting for their lab goes first.
        """,
    )

    start_seconds = Float(
        10.0,
        config=True,
        help="""
        First guess of one lab's start time (seconds) for the waiting page's estimate.

        Replaced as labs start by the moving average of the measured start times.
        """,
    )

    @property
    def queue(self) -> StartQueue:
        if self._queue is None:
            self._queue = StartQueue(
                self.parallel, ahead_parallel=self.ahead_parallel, start_seconds=self.start_seconds
            )
        return self._queue

    _queue: StartQueue | None = None
