"""The counters admission keeps: one user's day and month, one school's month.

Each holds what is settled and what running calls have reserved; checks count both as
spent (see :mod:`gateway.policy.admission`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from gateway.config.tenants import _allows


class Ticket:
    def __init__(self) -> None:
        self.cost_micro_usd: int | None = None
        self.tokens = 0
        self.settled = False

    def settle(self, cost_micro_usd: int | None, tokens: int) -> None:
        self.cost_micro_usd, self.tokens, self.settled = cost_micro_usd, tokens, True


@dataclass
class QuotaUsage:
    """One user's counters: settled amounts plus what running calls have reserved."""

    day: str
    month: str
    requests: int = 0
    tokens: int = 0
    micro_usd: int = 0
    reserved_requests: int = 0
    reserved_tokens: int = 0
    reserved_micro_usd: int = 0
    running: int = 0
    # Calls waiting for one of this user's own running calls to finish, oldest first.
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)

    def roll(self, day: str, month: str) -> None:
        if day != self.day:
            self.day, self.requests, self.tokens = day, 0, 0
        if month != self.month:
            self.month, self.micro_usd = month, 0

    def release_slot(self) -> None:
        """A running call ends: its slot goes to the oldest waiting call, if any."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot is handed over: ``running`` stays
                return
        self.running -= 1


@dataclass
class SchoolSpend:
    """A school's spend this month, in total and per model: settled plus reserved."""

    month: str
    micro_usd: int = 0
    reserved_micro_usd: int = 0
    # Keyed by (the name called, the catalog model charged): a cap on ``gpt-4.1`` holds its
    # dated snapshots too, and a cap on one snapshot holds only it.
    by_model: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved_by_model: dict[tuple[str, str], int] = field(default_factory=dict)
    alerted: bool = False  # the budget.alert audit entry of this month is written

    def roll(self, month: str) -> None:
        if month != self.month:
            self.month, self.micro_usd, self.alerted = month, 0, False
            self.by_model, self.reserved_by_model = {}, {}

    def of_pattern(self, pattern: str) -> tuple[int, int]:
        """Settled and reserved spend of the models a pattern matches."""
        def total(values: dict[tuple[str, str], int]) -> int:
            return sum(v for (called, charged), v in values.items()
                       if _allows((pattern,), called) or _allows((pattern,), charged))
        return total(self.by_model), total(self.reserved_by_model)
