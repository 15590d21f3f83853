"""Admission before a provider call: pauses, quotas and budget reservations.

The pipeline wraps every provider call (every kind: chat, embeddings, images,
speech, jobs) in::

    async with admission.admit(identity, model, estimate) as ticket:
        ...                                  # lease a key, call the provider
        ticket.settle(cost_micro_usd, tokens)  # the real cost; unsettled = released

``estimate.worst_case_micro_usd`` is reserved before the call so that
concurrent calls can never overshoot a budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.auth import Identity
from gateway.pricing import ModelInfo


@dataclass(frozen=True)
class CallEstimate:
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    worst_case_micro_usd: int | None = None  # None: unpriced


class Ticket:
    def __init__(self) -> None:
        self.cost_micro_usd: int | None = None
        self.tokens = 0
        self.settled = False

    def settle(self, cost_micro_usd: int | None, tokens: int) -> None:
        self.cost_micro_usd, self.tokens, self.settled = cost_micro_usd, tokens, True


class Admission:
    """Provisional: admits everything. Quotas and budgets replace the body of ``admit``."""

    @asynccontextmanager
    async def admit(
        self, identity: Identity, model: ModelInfo, estimate: CallEstimate
    ) -> AsyncIterator[Ticket]:
        yield Ticket()
