"""Attempts of one provider call: a key from the pool, retries, failover.

Plain Python. ``Attempts.run`` leases a key, hands it to one attempt, and on a
retryable failure (429, 5xx, a connection error, a timeout) tries again:
first on another key of the same provider (``exclude=``), and when every key
has been tried, after an exponential backoff with full jitter that honours the
vendor's ``Retry-After``. Attempts and total waiting are bounded. A key that
answers 401/403 is reported to the pool (which takes it out of use) and the
next key is tried; with none left the caller gets ``provider_auth_failed``.

The successful attempt's lease stays held while the caller uses the result
(a stream, a job), and is released when the ``async with`` block ends. Once a
result has been handed out nothing is retried: a stream that fails after its
first byte reached the caller fails.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.errors import ClassroomError, NoKeyAvailable, ProviderAuthFailed
from gateway.keypool import Lease, PoolBackend, ProviderKey, Tier

T = TypeVar("T")
Attempt = Callable[[ProviderKey | None, AsyncExitStack], Awaitable[T]]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_wait: float = 30.0

    def backoff(self, retry: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, base·2^(retry-1)] (capped), never less than Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, retry - 1))
        delay = rng() * ceiling
        return max(delay, retry_after or 0.0)


@dataclass(frozen=True)
class Claimant:
    """Whose call it is, for the pool's fair queue."""

    tenant: str
    user: str
    tier: Tier = Tier.STUDENT
    tokens: int = 0


@dataclass
class Outcome(Generic[T]):
    result: T
    lease: Lease
    attempts: int
    keys_tried: list[str] = field(default_factory=list)

    @property
    def key_name(self) -> str | None:
        return self.lease.key.name if self.lease.key else None


class Attempts:
    def __init__(
        self, pool: PoolBackend, policy: RetryPolicy, *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.policy = policy
        self.sleep = sleep
        self.rng = rng
        self.clock = clock

    def run(self, provider: str, who: Claimant, attempt: Attempt[T]) -> CallAttempts[T]:
        """``async with attempts.run(...) as outcome``: the lease is held inside the block."""
        return CallAttempts(self, provider, who, attempt)


class CallAttempts(Generic[T]):
    """One call's attempts, as an async context manager (a plain class: it is entered for
    every provider call, and a generator-based one costs more per call)."""

    def __init__(
        self, attempts: Attempts, provider: str, who: Claimant, attempt: Attempt[T]
    ) -> None:
        self.attempts = attempts
        self.provider = provider
        self.who = who
        self.attempt = attempt
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Outcome[T]:
        attempts, who = self.attempts, self.who
        policy = attempts.policy
        tried: list[str] = []  # keys that failed since the last wait
        all_tried: list[str] = []
        made = 0  # attempts that reached the provider
        waited = 0.0
        last: ClassroomError | None = None
        while True:
            stack = AsyncExitStack()
            await stack.__aenter__()
            lease: Lease | None = None
            try:
                lease = await stack.enter_async_context(attempts.pool.lease(
                    self.provider, tenant=who.tenant, user=who.user, tier=who.tier,
                    tokens=who.tokens, exclude=tuple(tried),
                ))
                made += 1
                result = await self.attempt(lease.key, stack)
            except NoKeyAvailable:
                await stack.aclose()
                if last is None or not tried:
                    raise
                # Every key has had its try: wait (or give up) and start over on any key.
                if isinstance(last, ProviderAuthFailed) or made >= policy.attempts:
                    raise last from None
                delay = policy.backoff(made, last.retry_after, attempts.rng)
                if waited + delay > policy.total_wait:
                    raise last from None
                waited += delay
                tried.clear()
                await attempts.sleep(delay)
                continue
            except ClassroomError as error:
                await stack.aclose()
                status = error.upstream_status
                key = lease.key if lease is not None else None
                if lease is not None and status in (401, 403, 429):
                    lease.failed(status, error.retry_after)
                auth = isinstance(error, ProviderAuthFailed)
                if not (error.retryable or auth) or key is None:
                    raise
                last = error
                tried.append(key.name)
                all_tried.append(key.name)
                if made >= policy.attempts and not auth:
                    raise
                continue
            except BaseException:
                await stack.aclose()
                raise
            assert lease is not None
            self._stack = stack
            return Outcome(result, lease, made, all_tried)

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
