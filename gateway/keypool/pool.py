"""Provisional pool: picks an active key by priority. The fair scheduler replaces
the internals of :class:`KeyPool`; its interface stays."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from enum import IntEnum

from gateway.errors import NoKeyAvailable
from gateway.keypool.keys import ProviderKey


class Tier(IntEnum):
    """Scheduling tiers: lower goes first."""

    DEMO = 0  # a teacher's or admin's live demo
    STUDENT = 1
    LOADTEST = 2


class Lease:
    def __init__(self, key: ProviderKey | None) -> None:
        self.key = key
        self.tokens = 0
        self.failure: tuple[int, float | None] | None = None

    def used_tokens(self, tokens: int) -> None:
        self.tokens += tokens

    def failed(self, status: int, retry_after: float | None = None) -> None:
        self.failure = (status, retry_after)


class KeyPool:
    def __init__(self, keys: Iterable[ProviderKey] = ()) -> None:
        self.keys = [k for k in keys if k.is_active]

    def keys_for(self, provider: str, tenant: str) -> list[ProviderKey]:
        return sorted(
            (k for k in self.keys if k.provider == provider and k.serves(tenant)),
            key=lambda k: -k.priority,
        )

    def available(self, provider: str, tenant: str) -> bool:
        return provider == "mock" or bool(self.keys_for(provider, tenant))

    @asynccontextmanager
    async def lease(
        self, provider: str, *, tenant: str, user: str, tier: Tier = Tier.STUDENT,
        tokens: int = 0, exclude: Iterable[str] = (),
    ) -> AsyncIterator[Lease]:
        skip = set(exclude)
        candidates = [k for k in self.keys_for(provider, tenant) if k.name not in skip]
        if not candidates:
            if provider == "mock" and not self.keys_for("mock", tenant):
                yield Lease(None)
                return
            raise NoKeyAvailable(
                f"No {provider} key is available for your school right now. Ask your teacher, "
                "or practise with mock/echo."
            )
        yield Lease(candidates[0])
