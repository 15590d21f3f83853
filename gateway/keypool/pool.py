"""The key pool's scheduler: fair queueing of calls onto provider keys.

A call asks for a lease on a key of its provider, in its school's scope. It is
granted at once when a key has a free concurrency slot and RPM/TPM budget and
nobody is waiting; otherwise it waits in the provider's queue. The queue is
ordered by tier (a teacher's live demo, then students, then load tests) and,
within a tier, round-robin across users: a student with fifty calls waiting
gets one turn per round, like everyone else. Keys are chosen by priority, then
by headroom. A wait longer than ``max_wait`` ends in ``queue_timeout``.

Limits are never exceeded, as the vendor counts them: a grant counts against the
key's concurrency and its sliding request and token windows (60 s) at the moment it
is made, and the scheduler runs on one event loop, so checking and granting cannot
interleave. The vendor counts a request when it arrives, a few milliseconds after
its grant and not always the same few (a burst of grants is sent one after the
other; the loop may be busy). So a grant stays in its window for ``margin``
seconds longer than the window: two requests ``rpm_limit`` grants apart reach the
vendor at least a window apart as long as their dispatch delays differ by less than
the margin (``benchmarks/dispatch_jitter.py`` measures them).
This is the in-process backend: state lives in this process (without Redis the
gateway refuses to run several workers), so a restart frees every slot; leases also
carry a TTL, renewed by their holder, so a holder that hangs is reclaimed. The same
scheduling across replicas, on Redis, is :mod:`gateway.keypool.redis_pool`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from gateway.errors import NoKeyAvailable, QueueTimeout
from gateway.keypool.backend import HealthListener
from gateway.keypool.clock import Clock, LoopClock, Timer
from gateway.keypool.keys import ProviderKey
from gateway.keypool.keystate import (  # noqa: F401 - MinuteCounts: part of this surface
    DEFAULT_MARGIN,
    WINDOW,
    KeyState,
    MinuteCounts,
    TokenCharge,
)

log = logging.getLogger("gateway.keypool")
DEFAULT_COOLDOWN = 10.0


class _Deadline(Exception):
    """A waiter's ``max_wait`` passed (raised into its future by the pool's clock)."""


class Tier(IntEnum):
    """Scheduling tiers: lower goes first."""

    DEMO = 0  # a teacher's or admin's live demo
    STUDENT = 1
    LOADTEST = 2


class Lease:
    """A granted slot on a key (``key`` is None for the unlimited mock)."""

    _ids = itertools.count(1)

    def __init__(
        self,
        pool: KeyPool | None,
        state: KeyState | None,
        user: str,
        tier: Tier,
        tokens: int,
        waited: float,
        ttl: float,
    ) -> None:
        self.id = next(self._ids)
        self.pool = pool
        self.state = state
        self.key: ProviderKey | None = state.key if state else None
        self.user = user
        self.tier = tier
        self.tokens = tokens  # charged to the key's TPM window at the grant
        self.charge: TokenCharge | None = None  # that charge, where the key has a TPM limit
        self.waited = waited
        self.granted_at = time.time()
        self.released_at: float | None = None
        self.ttl = ttl
        self.expires_at = (pool.clock.now() + ttl) if pool is not None and state else float("inf")
        self.reclaimed = False
        self.released = False
        self.failure: tuple[int, float | None] | None = None

    def renew(self) -> None:
        """Heartbeat: the holder is alive (call it from long streams and job polls)."""
        if self.pool is not None and self.state is not None:
            self.expires_at = self.pool.clock.now() + self.ttl

    def used_tokens(self, tokens: int) -> None:
        """The real token count, replacing the estimate charged at the grant."""
        if self.pool is not None and self.state is not None and tokens != self.tokens:
            self.state.correct_tokens(self.charge, self.pool.clock.now(), tokens - self.tokens)
            self.tokens = tokens

    def failed(self, status: int, retry_after: float | None = None) -> None:
        self.failure = (status, retry_after)
        if self.pool is not None and self.state is not None:
            self.pool.report(self.state, status, retry_after)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.released_at = time.time()  # before the slot is handed on: intervals never overlap
        if self.pool is not None and self.state is not None:
            self.pool._release(self)


@dataclass(eq=False)
class Waiter:
    provider: str
    tenant: str
    user: str
    tier: Tier
    tokens: int
    exclude: frozenset[str]
    future: asyncio.Future[Lease]
    enqueued: float


class ProviderQueue:
    """Waiters of one provider: tier → (user → that user's waiters), round-robin by user."""

    def __init__(self) -> None:
        self.tiers: dict[Tier, OrderedDict[str, deque[Waiter]]] = {}
        self.size = 0

    def push(self, waiter: Waiter) -> None:
        users = self.tiers.setdefault(waiter.tier, OrderedDict())
        users.setdefault(waiter.user, deque()).append(waiter)
        self.size += 1

    def remove(self, waiter: Waiter) -> None:
        users = self.tiers.get(waiter.tier)
        if not users or waiter.user not in users:
            return
        queue = users[waiter.user]
        try:
            queue.remove(waiter)
        except ValueError:
            return
        self.size -= 1
        if not queue:
            del users[waiter.user]

    def waiting_by_user(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for users in self.tiers.values():
            for user, queue in users.items():
                counts[user] = counts.get(user, 0) + len(queue)
        return counts


class KeyPool:
    """The in-process backend (:class:`gateway.keypool.backend.PoolBackend`)."""

    def __init__(
        self,
        keys: Iterable[ProviderKey] = (),
        *,
        max_wait: float = 120.0,
        lease_ttl: float = 300.0,
        on_health: HealthListener | None = None,
        window: float = WINDOW,
        margin: float = DEFAULT_MARGIN,
        clock: Clock | None = None,
    ) -> None:
        """``window``: the length of the RPM and TPM windows (the vendors' minute);
        ``margin``: how long past it a grant still counts, for dispatch jitter;
        ``clock``: the pool's time and timers (the event loop's unless a test moves it)."""
        if window <= 0 or margin < 0:
            raise ValueError("the window must be positive and the margin not negative")
        self.window = window
        self.margin = margin
        self.max_wait = max_wait
        self.lease_ttl = lease_ttl
        self.on_health = on_health
        self.clock: Clock = clock or LoopClock()
        self._states: dict[tuple[str, str], KeyState] = {}
        self._queues: dict[str, ProviderQueue] = {}
        self._timers: dict[str, Timer] = {}
        self._unlimited: dict[str, int] = {}  # running mock calls per user when no mock keys
        self.set_keys(keys)

    # -- life -----------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to start: the state is this process's."""

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def problem(self) -> str | None:
        return None

    # -- keys -----------------------------------------------------------------

    @property
    def keys(self) -> list[ProviderKey]:
        return [state.key for state in self._states.values()]

    def set_keys(self, keys: Iterable[ProviderKey]) -> None:
        """Replace the declared keys; running leases and windows of kept keys survive."""
        fresh: dict[tuple[str, str], KeyState] = {}
        for key in keys:
            ident = (key.provider, key.name)
            state = self._states.get(ident)
            if state is None:
                state = self._new_state(key)
            else:
                state.update_key(key, self.clock.now())
            fresh[ident] = state
        self._states = fresh
        for provider in list(self._queues):
            self._dispatch(provider)

    def _new_state(self, key: ProviderKey) -> KeyState:
        return KeyState(key, self.window, self.margin)

    def upsert_key(self, key: ProviderKey) -> None:
        state = self._states.get((key.provider, key.name))
        if state is None:
            self._states[(key.provider, key.name)] = self._new_state(key)
        else:
            state.update_key(key, self.clock.now())
        self._dispatch(key.provider)

    def set_health(
        self, provider: str, name: str, healthy: bool, reason: str | None = None
    ) -> None:
        state = self._state(provider, name)
        state.healthy, state.health_reason = healthy, reason
        if healthy:
            state.cooldown_until = 0.0
        self._dispatch(provider)

    def _state(self, provider: str, name: str) -> KeyState:
        state = self._states.get((provider, name))
        if state is None:
            raise KeyError(f"no {provider} key named {name!r}")
        return state

    def _provider_states(self, provider: str, tenant: str | None = None) -> list[KeyState]:
        return [
            s
            for (p, _), s in self._states.items()
            if p == provider and s.key.is_active and (tenant is None or s.key.serves(tenant))
        ]

    def keys_for(self, provider: str, tenant: str) -> list[ProviderKey]:
        states = self._provider_states(provider, tenant)
        return [s.key for s in sorted(states, key=lambda s: -s.key.priority)]

    def available(self, provider: str, tenant: str) -> bool:
        if provider == "mock" and not self._provider_states("mock"):
            return True
        return any(s.healthy for s in self._provider_states(provider, tenant))

    # -- health ---------------------------------------------------------------

    def report(self, state: KeyState, status: int, retry_after: float | None) -> None:
        now = self.clock.now()
        if status in (401, 403):
            state.healthy = False
            state.health_reason = f"the provider refused this key (HTTP {status})"
            log.warning("key %s marked unhealthy: HTTP %s", state.key.label, status)
            if self.on_health:
                self.on_health(state.key, False, state.health_reason)
        elif status == 429:
            state.cooldown_until = max(
                state.cooldown_until, now + (retry_after or DEFAULT_COOLDOWN)
            )
            self._schedule(state.key.provider)

    # -- leases ---------------------------------------------------------------

    def lease(
        self,
        provider: str,
        *,
        tenant: str,
        user: str,
        tier: Tier = Tier.STUDENT,
        tokens: int = 0,
        exclude: Iterable[str] = (),
        max_wait: float | None = None,
    ) -> Leasing:
        """``async with pool.lease(...) as lease``: waits for a slot, releases it on exit."""
        return Leasing(self, provider, tenant, user, tier, tokens, exclude, max_wait)

    async def acquire(
        self,
        provider: str,
        *,
        tenant: str,
        user: str,
        tier: Tier = Tier.STUDENT,
        tokens: int = 0,
        exclude: Iterable[str] = (),
        max_wait: float | None = None,
    ) -> Lease:
        """Wait for a lease (the caller must ``release()`` it)."""
        waiter = self.request(
            provider, tenant=tenant, user=user, tier=tier, tokens=tokens, exclude=exclude
        )
        if isinstance(waiter, Lease):
            return waiter
        return await self.wait(waiter, self.max_wait if max_wait is None else max_wait)

    def request(
        self,
        provider: str,
        *,
        tenant: str,
        user: str,
        tier: Tier = Tier.STUDENT,
        tokens: int = 0,
        exclude: Iterable[str] = (),
    ) -> Lease | Waiter:
        """A lease at once, or a place in the queue to :meth:`wait` on."""
        loop = asyncio.get_running_loop()
        skip = frozenset(exclude)
        if provider == "mock" and not self._provider_states("mock"):
            return Lease(None, None, user, tier, tokens, 0.0, self.lease_ttl)
        candidates = [s for s in self._provider_states(provider, tenant) if s.key.name not in skip]
        if not candidates:
            raise NoKeyAvailable(
                f"No {provider} key serves your school in this classroom. Ask your teacher, "
                "or practise with mock/echo."
            )
        if not any(s.healthy for s in candidates):
            raise NoKeyAvailable(
                f"Every {provider} key of your school is out of service (the provider refused "
                "it). An administrator has to check the keys; practise with mock/echo meanwhile."
            )
        now = self.clock.now()
        queue = self._queues.setdefault(provider, ProviderQueue())
        waiter = Waiter(provider, tenant, user, tier, tokens, skip, loop.create_future(), now)
        if queue.size == 0:
            state = self._pick(candidates, now, tokens)
            if state is not None:
                return self._grant(state, waiter, now)
        queue.push(waiter)
        self._dispatch(provider)
        return waiter

    async def wait(self, waiter: Waiter, timeout: float) -> Lease:
        future = waiter.future

        def expire() -> None:
            if not future.done():
                future.set_exception(_Deadline())

        deadline = self.clock.call_at(waiter.enqueued + timeout, expire)
        try:
            return await asyncio.shield(future)
        except (_Deadline, asyncio.CancelledError) as exc:
            self._abandon(waiter)
            if isinstance(exc, asyncio.CancelledError):
                raise
            waited = self.clock.now() - waiter.enqueued
            raise QueueTimeout(
                f"Every {waiter.provider} key was busy for {waited:.0f} s, the longest a call "
                "may wait. The class is making many calls at once: try again in a minute.",
                retry_after=5,
                details={"waited_s": round(waited, 1)},
            ) from None
        finally:
            deadline.cancel()

    def _abandon(self, waiter: Waiter) -> None:
        queue = self._queues.get(waiter.provider)
        if queue is not None:
            queue.remove(waiter)
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            future.result().release()  # granted in the same instant: give it back
        else:
            waiter.future.cancel()

    def _pick(self, candidates: list[KeyState], now: float, tokens: int) -> KeyState | None:
        best: KeyState | None = None
        best_rank: tuple[int, float] | None = None
        for state in candidates:
            state.prune(now)
            if not state.usable(now) or not state.fits(now, tokens):
                continue
            rank = (state.key.priority, state.headroom())
            if best_rank is None or rank > best_rank:
                best, best_rank = state, rank
        return best

    def _grant(self, state: KeyState, waiter: Waiter, now: float) -> Lease:
        lease = Lease(
            self,
            state,
            waiter.user,
            waiter.tier,
            waiter.tokens,
            now - waiter.enqueued,
            self.lease_ttl,
        )
        state.active.add(lease)
        state.record_grant(now)
        lease.charge = state.charge_tokens(now, waiter.tokens)
        return lease

    def _release(self, lease: Lease) -> None:
        state = lease.state
        assert state is not None
        state.active.discard(lease)
        self._dispatch(state.key.provider)

    def _dispatch(self, provider: str) -> None:
        """Grant what can be granted: highest tier first, round-robin across users."""
        queue = self._queues.get(provider)
        if not queue or queue.size == 0:
            return
        now = self.clock.now()
        granted = True
        while granted and queue.size:
            granted = False
            for tier in sorted(queue.tiers):
                users = queue.tiers[tier]
                for user in list(users):
                    waiter = users[user][0]
                    if waiter.future.done():  # timed out or cancelled meanwhile
                        queue.remove(waiter)
                        granted = True
                        break
                    candidates = [
                        s
                        for s in self._provider_states(provider, waiter.tenant)
                        if s.key.name not in waiter.exclude
                    ]
                    state = self._pick(candidates, now, waiter.tokens)
                    if state is None:
                        continue
                    queue.remove(waiter)
                    if user in users:
                        users.move_to_end(user)  # next round, this user goes last
                    waiter.future.set_result(self._grant(state, waiter, now))
                    granted = True
                    break
                if granted:
                    break
        if queue.size:
            self._schedule(provider)

    def _schedule(self, provider: str) -> None:
        """Wake the queue when a window slides or a cool-down ends (releases wake it too)."""
        now = self.clock.now()
        openings = [
            t for s in self._provider_states(provider) if (t := s.next_opening(now)) is not None
        ]
        if not openings:
            return
        when = max(min(openings), now) + 0.001
        timer = self._timers.get(provider)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[provider] = self.clock.call_at(when, lambda: self._wake(provider))

    def _wake(self, provider: str) -> None:
        self._timers.pop(provider, None)
        self._dispatch(provider)

    # -- reporting --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/pool`` shows: per key and per user. No secret, ever."""
        now = self.clock.now()
        keys = []
        running: dict[str, int] = {}
        for (provider, name), state in sorted(self._states.items()):
            state.prune(now)
            for lease in state.active:
                running[lease.user] = running.get(lease.user, 0) + 1
            queue = self._queues.get(provider)
            keys.append(
                {
                    "provider": provider,
                    "name": name,
                    "last4": state.key.last4,
                    "is_active": state.key.is_active,
                    "healthy": state.healthy,
                    "health_reason": state.health_reason,
                    "cooldown_s": round(max(0.0, state.cooldown_until - now), 1),
                    "active_leases": len(state.active),
                    "concurrency_limit": state.key.concurrency_limit,
                    "rpm_used": state.rpm_used(now),
                    "rpm_limit": state.key.rpm_limit,
                    "tpm_used": state.tpm_used(now),
                    "tpm_limit": state.key.tpm_limit,
                    "priority": state.key.priority,
                    "tenant_scope": list(state.key.tenant_scope),
                    "queue_length": queue.size if queue else 0,
                    "granted_total": state.granted_total,
                }
            )
        waiting: dict[str, int] = {}
        for queue in self._queues.values():
            for user, count in queue.waiting_by_user().items():
                waiting[user] = waiting.get(user, 0) + count
        users = sorted(set(waiting) | set(running))
        return {
            "keys": keys,
            "queues": {p: q.size for p, q in sorted(self._queues.items())},
            "users": [
                {"user": u, "waiting": waiting.get(u, 0), "running": running.get(u, 0)}
                for u in users
            ],
        }


class Leasing:
    """The context of :meth:`KeyPool.lease` (a plain class: it is on every call's path)."""

    __slots__ = ("exclude", "lease", "max_wait", "pool", "provider", "tenant", "tier", "tokens",
                 "user")

    def __init__(self, pool: KeyPool, provider: str, tenant: str, user: str, tier: Tier,
                 tokens: int, exclude: Iterable[str], max_wait: float | None) -> None:
        self.pool, self.provider, self.tenant, self.user = pool, provider, tenant, user
        self.tier, self.tokens, self.exclude, self.max_wait = tier, tokens, exclude, max_wait

    async def __aenter__(self) -> Lease:
        self.lease = await self.pool.acquire(
            self.provider, tenant=self.tenant, user=self.user, tier=self.tier,
            tokens=self.tokens, exclude=self.exclude, max_wait=self.max_wait,
        )
        return self.lease

    async def __aexit__(self, *exc_info: object) -> None:
        self.lease.release()
