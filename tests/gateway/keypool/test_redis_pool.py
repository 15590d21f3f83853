"""The key pool on a real Redis: several pools (replicas, each with its own replica id and
connections) sharing one Redis keep every limit, fairness and tier; a silent replica's
leases come back after its heartbeat and are fenced; a call that leaves leaks no slot;
Redis going away refuses calls (``pool_unavailable``) and coming back is picked up.

These run the pools in one event loop (the cross-process guarantees, from the vendor's
own log, are in ``tests/gateway/test_replicas.py``).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
import redis as sync_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import NoKeyAvailable, PoolUnavailable, QueueTimeout
from gateway.keypool import ProviderKey, Tier
from gateway.keypool.redis_pool import RedisPool
from tests.gateway.keypool.test_pool import max_overlap
from tests.support.redis import start_redis


def key(name, **limits):
    return ProviderKey(provider="openai", name=name, secret=f"sk-test-{name}-0000", **limits)


def replicas(url, prefix, keys, n=2, **options):
    options.setdefault("max_wait", 30)
    options.setdefault("heartbeat", 1.0)
    return [RedisPool(url, keys, prefix=prefix, **options) for _ in range(n)]


async def closing(pools):
    for pool in pools:
        await pool.aclose()


async def hold(pool, user, log, duration, tier=Tier.STUDENT, tokens=0):
    async with pool.lease("openai", tenant="t", user=user, tier=tier, tokens=tokens) as lease:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(duration)  # the provider call's duration, not synchronisation
        log.append((lease.key.name, start, loop.time(), user))


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(limits=st.lists(st.integers(1, 3), min_size=1, max_size=3), seed=st.integers(0, 99))
def test_concurrency_limits_hold_across_replicas(redis_server, limits, seed):
    rng = random.Random(seed)
    prefix = f"test:conc:{seed}:{rng.random()}"
    keys = [key(f"k{i}", concurrency_limit=c) for i, c in enumerate(limits)]

    async def scenario():
        pools = replicas(redis_server.url, prefix, keys, n=3)
        log = []

        async def arrive(i):
            await asyncio.sleep(rng.random() * 0.1)
            await hold(pools[i % 3], f"u{i % 5}", log, rng.random() * 0.03)

        try:
            await asyncio.gather(*(arrive(i) for i in range(40)))
        finally:
            await closing(pools)
        return log

    log = asyncio.run(scenario())
    assert len(log) == 40
    for k in keys:
        intervals = [(s, e) for name, s, e, _ in log if name == k.name]
        assert max_overlap(intervals) <= k.concurrency_limit


def test_rpm_window_is_exact_across_replicas(redis_server, redis_prefix):
    window, limit = 0.4, 3

    async def scenario():
        pools = replicas(redis_server.url, redis_prefix, [key("a", rpm_limit=limit)], n=2,
                         window=window, margin=0.02)
        loop = asyncio.get_running_loop()
        grants = []

        async def one(i):
            async with pools[i % 2].lease("openai", tenant="t", user=f"u{i}"):
                grants.append(loop.time())

        try:
            await asyncio.gather(*(one(i) for i in range(10)))
        finally:
            await closing(pools)
        return sorted(grants)

    grants = asyncio.run(scenario())
    assert len(grants) == 10
    for i in range(len(grants) - limit):
        # any limit+1 grants span more than the window (the script's clock is Redis's)
        assert grants[i + limit] - grants[i] >= window - 0.01


def test_tpm_is_charged_at_grant_and_corrected(redis_server, redis_prefix):
    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("a", tpm_limit=100)],
                        window=30, max_wait=0.3)
        try:
            first = await a.acquire("openai", tenant="t", user="u", tokens=90)
            with pytest.raises(QueueTimeout):  # 90 + 20 > 100, whichever replica asks
                await b.acquire("openai", tenant="t", user="v", tokens=20)
            first.used_tokens(40)  # the real count: 40
            await asyncio.gather(*a._tasks)
            second = await b.acquire("openai", tenant="t", user="v", tokens=50)
            await second.aclose()
            await first.aclose()
            await a._read_state()
            return a.snapshot()["keys"][0]["tpm_used"]
        finally:
            await closing([a, b])

    assert asyncio.run(scenario()) == 90


def test_a_flooding_user_on_one_replica_does_not_delay_another_replicas_student(
        redis_server, redis_prefix):
    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("a", concurrency_limit=1)])
        order = []

        async def call(pool, user):
            async with pool.lease("openai", tenant="t", user=user):
                order.append(user)
                await asyncio.sleep(0.005)

        try:
            greedy = [asyncio.create_task(call(a, "greedy")) for _ in range(20)]
            await asyncio.sleep(0.05)  # the flood is queued first (ordering, not a wait)
            polite = [asyncio.create_task(call(b, "polite")) for _ in range(3)]
            await asyncio.gather(*greedy, *polite)
        finally:
            await closing([a, b])
        return order

    order = asyncio.run(scenario())
    positions = [i for i, user in enumerate(order) if user == "polite"]
    # round-robin across users: each polite call waits for at most one or two greedy ones
    assert positions[-1] <= 2 * len(positions) + 3, order


def test_tiers_hold_across_replicas(redis_server, redis_prefix):
    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("a", concurrency_limit=1)])
        order = []
        try:
            blocker = await a.acquire("openai", tenant="t", user="x")

            async def call(pool, user, tier):
                async with pool.lease("openai", tenant="t", user=user, tier=tier):
                    order.append(tier)

            tasks = [asyncio.create_task(call(a, "lt", Tier.LOADTEST)),
                     asyncio.create_task(call(b, "s", Tier.STUDENT)),
                     asyncio.create_task(call(a, "s2", Tier.STUDENT)),
                     asyncio.create_task(call(b, "demo", Tier.DEMO))]
            await _until(lambda: a.snapshot()["keys"] and _queued(a, redis_prefix) == 4)
            await blocker.aclose()
            await asyncio.gather(*tasks)
        finally:
            await closing([a, b])
        return order

    assert asyncio.run(scenario()) == [Tier.DEMO, Tier.STUDENT, Tier.STUDENT, Tier.LOADTEST]


def _queued(pool, prefix):
    return sync_redis.Redis.from_url(pool.url).zcard(f"{prefix}:q:openai")


async def _until(condition, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.01)  # polling a condition, not a fixed wait


def test_a_silent_replica_loses_its_leases_after_its_heartbeat_and_is_fenced(
        redis_server, redis_prefix):
    async def scenario():
        frozen, alive = replicas(redis_server.url, redis_prefix,
                                 [key("a", concurrency_limit=1)], heartbeat=0.6, lease_ttl=300)
        try:
            lease = await frozen.acquire("openai", tenant="t", user="stuck")
            frozen._beater.cancel()  # this replica stops beating (frozen, or killed)
            loop = asyncio.get_running_loop()
            start = loop.time()
            taken = await alive.acquire("openai", tenant="t", user="next")
            waited = loop.time() - start
            # the frozen replica wakes: its renewal, charge and release change nothing
            await frozen._renew(lease)
            renewed_lost = lease.lost
            await frozen._charge(lease, 500)
            await lease.aclose()
            await alive._read_state()
            state = alive.snapshot()["keys"][0]
            await taken.aclose()
            return waited, renewed_lost, lease.lost, state["active_leases"]
        finally:
            await closing([frozen, alive])

    waited, renewed_lost, lost, active = asyncio.run(scenario())
    assert waited < 0.6 + 0.5  # the heartbeat (and a poll), not the 300 s lease TTL
    assert renewed_lost and lost
    assert active == 1  # the frozen replica's release did not free the other's slot


def test_a_call_leaving_while_queued_or_at_the_grant_leaks_no_slot(redis_server, redis_prefix):
    """Grants racing cancellations, many times over: the interleavings differ from run to
    run (an enqueue's answer still unread when its caller leaves, a poll's grant arriving
    after the waiter left, an abandon crossing a grant), and none may leak a slot."""

    async def scenario(prefix):
        a, b = replicas(redis_server.url, prefix, [key("a", concurrency_limit=2)], max_wait=10)
        try:
            holders = [await a.acquire("openai", tenant="t", user="h") for _ in range(2)]
            leaving = [asyncio.create_task(b.acquire("openai", tenant="t", user=f"l{i}"))
                       for i in range(6)]
            # queued in Redis; some answers may still be unread by their callers
            await _until(lambda: _queued(a, prefix) == 6)
            for holder in holders:
                holder.release()  # grants race with the cancellations below
            for task in leaving:
                task.cancel()
            results = await asyncio.gather(*leaving, return_exceptions=True)
            for result in results:  # a call that got its lease before leaving gives it back
                if not isinstance(result, BaseException):
                    await result.aclose()
            await _settled(a, b)
            both = [await a.acquire("openai", tenant="t", user="after") for _ in range(2)]
            await a._read_state()
            active = a.snapshot()["keys"][0]["active_leases"]
            for lease in both:
                await lease.aclose()
            return active, _queued(a, prefix)
        finally:
            await closing([a, b])

    for i in range(30):
        # both slots free again and nothing left in the queue: nothing leaked
        assert asyncio.run(scenario(f"{redis_prefix}:{i}")) == (2, 0), f"run {i}"


async def _settled(*pools):
    """Every background report and poller of these pools has finished."""
    while True:
        pending = [t for pool in pools for t in [*pool._tasks, *pool._pollers.values()]
                   if not t.done()]
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


def _hook_enqueue(pool, *, before):
    """Holds the pool's next enqueue on its way to Redis (``before``) or on its way back
    (its answer not yet read), until ``gate`` is set; ``held`` is set once it is held."""
    real = pool._call
    held, gate = asyncio.Event(), asyncio.Event()

    async def call(op, *args):
        hook = op == "enqueue" and not held.is_set()
        if hook and before:
            held.set()
            await gate.wait()
        result = await real(op, *args)
        if hook and not before:
            held.set()
            await gate.wait()
        return result

    pool._call = call
    return held, gate


@pytest.mark.parametrize("busy", [True, False], ids=["queued", "granted"])
def test_a_call_leaving_while_its_enqueue_is_answered_leaks_no_slot(
        redis_server, redis_prefix, busy):
    """Redis has queued (or granted) the call, but its caller leaves before reading the
    answer: the call is taken out of the queue (or its grant given back) all the same.
    (Before the fix the queue entry stayed, owned by a live replica, and was granted later
    to nobody: a slot lost for the lease TTL.)"""

    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("a", concurrency_limit=1)],
                        max_wait=5)
        try:
            holder = await a.acquire("openai", tenant="t", user="h") if busy else None
            held, gate = _hook_enqueue(b, before=False)
            task = asyncio.create_task(b.acquire("openai", tenant="t", user="leaving"))
            await held.wait()  # Redis has answered; the caller has not read it
            task.cancel()
            gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _settled(a, b)
            queued, running = _queued(a, redis_prefix), _running(a, redis_prefix)
            if holder is not None:
                await holder.aclose()
            after = await a.acquire("openai", tenant="t", user="after")
            await after.aclose()
            return queued, running
        finally:
            await closing([a, b])

    assert asyncio.run(scenario()) == (0, 1 if busy else 0)


def test_a_call_leaving_while_it_is_queued_again_leaks_no_slot(redis_server, redis_prefix):
    """A waiter found gone from Redis (its replica thought dead for a moment) is queued
    again; its caller leaves while that enqueue is on its way, so the caller's abandon
    reaches Redis first and finds nothing. The entry queued again is taken out all the
    same. (Before the fix it stayed, and its later grant leaked a slot.)"""

    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("a", concurrency_limit=1)],
                        max_wait=5)
        sync = sync_redis.Redis.from_url(redis_server.url)
        try:
            holder = await a.acquire("openai", tenant="t", user="h")
            task = asyncio.create_task(b.acquire("openai", tenant="t", user="leaving"))
            await _until(lambda: b._waiting.get("openai"))
            held, gate = _hook_enqueue(b, before=True)
            (wid,) = b._waiting["openai"]
            # what the script does to a waiter of a replica whose heartbeat lapsed
            sync.zrem(f"{redis_prefix}:q:openai", wid)
            sync.delete(f"{redis_prefix}:w:{wid}")
            b._wakes["openai"].set()
            await held.wait()  # the poller found it gone and is queueing it again
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task  # its abandon has reached Redis, before the enqueue
            gate.set()
            await _settled(a, b)
            queued, entry = _queued(a, redis_prefix), sync.exists(f"{redis_prefix}:w:{wid}")
            await holder.aclose()
            after = await a.acquire("openai", tenant="t", user="after")
            await after.aclose()
            return queued, entry
        finally:
            sync.close()
            await closing([a, b])

    assert asyncio.run(scenario()) == (0, 0)


def _running(pool, prefix):
    return sync_redis.Redis.from_url(pool.url).zcard(f"{prefix}:lease:openai:a")


def test_health_and_cooldown_are_shared(redis_server, redis_prefix):
    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix,
                        [key("bad"), key("hot"), key("ok", priority=-1)], max_wait=0.5)
        try:
            for name, status in (("bad", 401), ("hot", 429)):
                lease = await a.acquire("openai", tenant="t", user="u",
                                        exclude=[n for n in ("bad", "hot") if n != name] + ["ok"])
                lease.failed(status, 30)
                await lease.aclose()
            await asyncio.gather(*a._tasks)
            names = Counter()
            for _ in range(5):
                lease = await b.acquire("openai", tenant="t", user="v")
                names[lease.key.name] += 1
                await lease.aclose()
            await b._read_state()
            healthy = {k["name"]: k["healthy"] for k in b.snapshot()["keys"]}
            return names, healthy
        finally:
            await closing([a, b])

    names, healthy = asyncio.run(scenario())
    assert names == {"ok": 5}  # the other replica skips the refused and the cooling key
    assert healthy == {"bad": False, "hot": True, "ok": True}


def test_every_key_refused_is_no_key_available_on_every_replica(redis_server, redis_prefix):
    async def scenario():
        a, b = replicas(redis_server.url, redis_prefix, [key("only")])
        try:
            lease = await a.acquire("openai", tenant="t", user="u")
            lease.failed(403)
            await lease.aclose()
            await asyncio.gather(*a._tasks)
            with pytest.raises(NoKeyAvailable):
                await b.acquire("openai", tenant="t", user="v")
        finally:
            await closing([a, b])

    asyncio.run(scenario())


def test_redis_down_refuses_calls_and_recovery_needs_no_restart():
    server = start_redis()

    async def scenario():
        (pool,) = replicas(server.url, "test:down", [key("a", concurrency_limit=1)], n=1)
        try:
            first = await pool.acquire("openai", tenant="t", user="u")
            await first.aclose()
            server.stop()
            with pytest.raises(PoolUnavailable) as refused:
                await pool.acquire("openai", tenant="t", user="u")
            problem = await pool.problem()
            server.start()
            again = await pool.acquire("openai", tenant="t", user="u")
            await again.aclose()
            return refused.value, problem, await pool.problem()
        finally:
            await pool.aclose()

    try:
        error, down, up = asyncio.run(scenario())
    finally:
        server.close()
    assert error.status == 503 and error.code == "pool_unavailable"
    assert down is not None and up is None


def test_redis_that_lost_its_state_holds_limited_keys_for_a_window():
    """A restarted Redis without its data cannot know the last window's requests: a key
    with an RPM limit waits a window before its next grant, and none is exceeded."""
    server = start_redis()
    window = 0.6

    async def scenario():
        (pool,) = replicas(server.url, "test:lost", [key("a", rpm_limit=2)], n=1,
                           window=window, margin=0.02)
        loop = asyncio.get_running_loop()
        try:
            grants = []
            for _ in range(2):
                lease = await pool.acquire("openai", tenant="t", user="u")
                grants.append(loop.time())
                await lease.aclose()
            server.stop()
            server.start()  # empty: no persistence
            lease = await pool.acquire("openai", tenant="t", user="u")
            grants.append(loop.time())
            await lease.aclose()
            return grants
        finally:
            await pool.aclose()

    try:
        grants = asyncio.run(scenario())
    finally:
        server.close()
    assert grants[2] - grants[0] >= window - 0.01
