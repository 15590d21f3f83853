"""The key pool's scheduler: limits hold, queues are fair, tiers hold, health and timeouts."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from gateway.errors import NoKeyAvailable, QueueTimeout
from gateway.keypool import KeyPool, ProviderKey, Tier
from gateway.keypool.clock import ManualClock

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def key(name, **limits):
    return ProviderKey(provider="openai", name=name, secret=f"sk-test-{name}-0000", **limits)


async def hold(pool, user, log, duration, tier=Tier.STUDENT, tenant="school_a", tokens=0):
    async with pool.lease("openai", tenant=tenant, user=user, tier=tier, tokens=tokens) as lease:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(duration)
        log.append((lease.key.name, start, loop.time(), user))


def max_overlap(intervals):
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    depth = best = 0
    for _, delta in events:
        depth += delta
        best = max(best, depth)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_concurrency_limits_hold_under_random_arrivals(seed):
    rng = random.Random(seed)
    limits = {"a": 2, "b": 1, "c": 3}

    async def scenario():
        pool = KeyPool([key(n, concurrency_limit=c) for n, c in limits.items()], max_wait=30)
        log = []

        async def arrive(i):
            await asyncio.sleep(rng.random() * 0.05)
            await hold(pool, f"u{i % 7}", log, rng.random() * 0.02)

        await asyncio.gather(*(arrive(i) for i in range(120)))
        return log

    log = asyncio.run(scenario())
    assert len(log) == 120
    for name, limit in limits.items():
        intervals = [(s, e) for k, s, e, _ in log if k == name]
        assert intervals, f"key {name} never used"
        assert max_overlap(intervals) <= limit


def test_rpm_limit_holds_in_every_sliding_window():
    async def scenario():
        # A short window, so that the test runs in a moment.
        pool = KeyPool([key("a", rpm_limit=3), key("b", rpm_limit=2)], max_wait=10,
                       window=0.2, margin=0.02)
        log = []
        await asyncio.gather(*(hold(pool, f"u{i}", log, 0) for i in range(20)))
        return log

    log = asyncio.run(scenario())
    assert len(log) == 20
    for name, limit in (("a", 3), ("b", 2)):
        starts = sorted(s for k, s, _, _ in log if k == name)
        for i, start in enumerate(starts):
            in_window = [t for t in starts[i:] if t < start + 0.2 - 1e-6]
            assert len(in_window) <= limit


def test_tpm_budget_is_charged_at_grant_and_corrected_after():
    async def scenario():
        pool = KeyPool([key("a", tpm_limit=100)], max_wait=5, window=0.3)
        first = await pool.acquire("openai", tenant="x", user="u", tokens=80)
        waiter = pool.request("openai", tenant="x", user="v", tokens=50)
        assert not hasattr(waiter, "key")  # queued: 80 + 50 > 100
        first.used_tokens(30)  # the real call was smaller; 30 + 50 fits now
        first.release()
        second = await pool.wait(waiter, 1)
        snapshot = pool.snapshot()["keys"][0]
        second.release()
        return snapshot

    snapshot = asyncio.run(scenario())
    assert snapshot["tpm_used"] == 80  # 30 + 50
    assert snapshot["rpm_used"] == 2


def test_greedy_user_does_not_delay_a_polite_one():
    async def scenario():
        pool = KeyPool([key("only", concurrency_limit=1)], max_wait=30)
        order = []

        async def call(user):
            async with pool.lease("openai", tenant="t", user=user):
                order.append(user)
                await asyncio.sleep(0.001)

        blocker = await pool.acquire("openai", tenant="t", user="blocker")
        greedy = [asyncio.create_task(call("greedy")) for _ in range(50)]
        await asyncio.sleep(0.01)  # all fifty greedy calls are queued first
        polite = asyncio.create_task(call("polite"))
        await asyncio.sleep(0.01)
        blocker.release()
        await asyncio.gather(*greedy, polite)
        return order

    order = asyncio.run(scenario())
    # the polite user's single call is served in the first round, not after 50
    assert order.index("polite") == 1


def test_round_robin_shares_evenly_between_busy_users():
    async def scenario():
        pool = KeyPool([key("only", concurrency_limit=1)], max_wait=30)
        order = []

        async def call(user):
            async with pool.lease("openai", tenant="t", user=user):
                order.append(user)
                await asyncio.sleep(0)

        blocker = await pool.acquire("openai", tenant="t", user="blocker")
        tasks = [asyncio.create_task(call(u)) for u in ["a"] * 30 + ["b"] * 10 + ["c"] * 10]
        await asyncio.sleep(0.01)
        blocker.release()
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(scenario())
    first30 = Counter(order[:30])
    assert first30 == {"a": 10, "b": 10, "c": 10}


def test_tiers_put_demos_before_students_before_load_tests():
    async def scenario():
        pool = KeyPool([key("only", concurrency_limit=1)], max_wait=30)
        order = []

        async def call(user, tier):
            async with pool.lease("openai", tenant="t", user=user, tier=tier):
                order.append(user)

        blocker = await pool.acquire("openai", tenant="t", user="blocker")
        tasks = [asyncio.create_task(call(f"load{i}", Tier.LOADTEST)) for i in range(5)]
        tasks += [asyncio.create_task(call(f"stu{i}", Tier.STUDENT)) for i in range(3)]
        tasks.append(asyncio.create_task(call("teacher", Tier.DEMO)))
        await asyncio.sleep(0.01)
        blocker.release()
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(scenario())
    assert order[0] == "teacher"
    assert set(order[1:4]) == {"stu0", "stu1", "stu2"}
    assert all(u.startswith("load") for u in order[4:])


def test_priority_then_headroom_chooses_the_key():
    async def scenario():
        pool = KeyPool(
            [
                key("low", priority=0, concurrency_limit=5),
                key("high", priority=10, concurrency_limit=2),
            ]
        )
        names = []
        leases = []
        for _ in range(4):
            lease = await pool.acquire("openai", tenant="t", user="u")
            names.append(lease.key.name)
            leases.append(lease)
        for lease in leases:
            lease.release()
        return names

    assert asyncio.run(scenario()) == ["high", "high", "low", "low"]


def test_tenant_scope_limits_which_keys_serve():
    async def scenario():
        pool = KeyPool([key("a-only", tenant_scope=("school_a",)), key("all")])
        a = await pool.acquire("openai", tenant="school_a", user="u", exclude=["all"])
        b = await pool.acquire("openai", tenant="school_b", user="v")
        with pytest.raises(NoKeyAvailable):
            await pool.acquire("openai", tenant="school_b", user="v", exclude=["all"])
        return a.key.name, b.key.name

    assert asyncio.run(scenario()) == ("a-only", "all")


def test_queue_timeout_says_how_long_it_waited():
    async def scenario():
        pool = KeyPool([key("only", concurrency_limit=1)], max_wait=0.05)
        holder = await pool.acquire("openai", tenant="t", user="a")
        with pytest.raises(QueueTimeout) as error:
            await pool.acquire("openai", tenant="t", user="b")
        snapshot = pool.snapshot()
        holder.release()
        return error.value, snapshot

    error, snapshot = asyncio.run(scenario())
    assert error.code == "queue_timeout" and error.status == 429
    assert "0 s" in error.message and error.details["waited_s"] >= 0.05
    assert snapshot["queues"] == {"openai": 0}  # the timed-out waiter left the queue


def test_cancelled_waiter_leaves_no_trace_and_frees_nothing_twice():
    async def scenario():
        pool = KeyPool([key("only", concurrency_limit=1)], max_wait=10)
        holder = await pool.acquire("openai", tenant="t", user="a")
        task = asyncio.create_task(pool.acquire("openai", tenant="t", user="b"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        holder.release()
        holder.release()  # idempotent
        again = await pool.acquire("openai", tenant="t", user="c")
        snap = pool.snapshot()
        again.release()
        return snap

    snap = asyncio.run(scenario())
    assert snap["keys"][0]["active_leases"] == 1 and snap["queues"]["openai"] == 0


def test_auth_failure_takes_a_key_out_and_429_cools_it_down():
    async def scenario():
        events = []
        pool = KeyPool(
            [key("bad", priority=5), key("good")],
            on_health=lambda k, ok, why: events.append((k.name, ok)),
        )
        lease = await pool.acquire("openai", tenant="t", user="u")
        assert lease.key.name == "bad"
        lease.failed(401)
        lease.release()
        next_lease = await pool.acquire("openai", tenant="t", user="u")
        next_lease.failed(429, retry_after=30)
        next_lease.release()
        with pytest.raises(QueueTimeout):
            await pool.acquire("openai", tenant="t", user="u", max_wait=0.05)
        snap = {k["name"]: k for k in pool.snapshot()["keys"]}
        pool.set_health("openai", "bad", True)
        restored = await pool.acquire("openai", tenant="t", user="u")
        restored.release()
        return next_lease.key.name, events, snap, restored.key.name

    name, events, snap, restored = asyncio.run(scenario())
    assert name == "good"
    assert events == [("bad", False)]
    assert snap["bad"]["healthy"] is False and "401" in snap["bad"]["health_reason"]
    assert 29 <= snap["good"]["cooldown_s"] <= 30
    assert restored == "bad"


def test_all_keys_unhealthy_is_no_key_available():
    async def scenario():
        pool = KeyPool([key("a")])
        pool.set_health("openai", "a", False, "revoked")
        with pytest.raises(NoKeyAvailable) as error:
            await pool.acquire("openai", tenant="t", user="u")
        return error.value.message

    assert "out of service" in asyncio.run(scenario())


async def until(condition, turns=1000):
    """Let the loop run until ``condition()`` holds (the pool's own tasks and callbacks)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def queued(pool):
    return sum(pool.snapshot()["queues"].values())


def test_expired_lease_is_reclaimed_exactly_at_its_ttl():
    async def scenario():
        clock = ManualClock()
        pool = KeyPool([key("only", concurrency_limit=1)], lease_ttl=300, max_wait=900,
                       clock=clock)
        stale = await pool.acquire("openai", tenant="t", user="dead-kernel")
        # the holder never renews nor releases; the next caller gets the slot after the TTL
        fresh = asyncio.create_task(pool.acquire("openai", tenant="t", user="alive"))
        await until(lambda: queued(pool) == 1)
        clock.advance(299.9)
        await asyncio.sleep(0)
        assert not fresh.done() and not stale.reclaimed
        clock.advance(0.2)
        lease = await fresh
        lease.release()
        return stale.reclaimed, lease.waited

    reclaimed, waited = asyncio.run(scenario())
    assert reclaimed is True and 300.0 <= waited <= 300.1 + 0.002


def test_renewed_lease_is_kept():
    async def scenario():
        clock = ManualClock()
        pool = KeyPool([key("only", concurrency_limit=1)], lease_ttl=10, max_wait=900,
                       clock=clock)
        lease = await pool.acquire("openai", tenant="t", user="video-job")
        other = asyncio.create_task(pool.acquire("openai", tenant="t", user="other",
                                                 max_wait=55))
        await until(lambda: queued(pool) == 1)
        for _ in range(7):  # a minute of renewals every 8 s: never 10 s without one
            clock.advance(8)
            lease.renew()
            await asyncio.sleep(0)
        with pytest.raises(QueueTimeout):
            await other
        lease.release()
        return lease.reclaimed

    assert asyncio.run(scenario()) is False


def test_mock_without_keys_is_unlimited_and_with_keys_is_pooled():
    async def scenario():
        free = KeyPool([])
        leases = [await free.acquire("mock", tenant="t", user="u") for _ in range(100)]
        assert all(lease.key is None for lease in leases)
        limited = KeyPool(
            [ProviderKey(provider="mock", name="m", concurrency_limit=1)], max_wait=0.05
        )
        first = await limited.acquire("mock", tenant="t", user="u")
        with pytest.raises(QueueTimeout):
            await limited.acquire("mock", tenant="t", user="v")
        first.release()
        return free.available("mock", "t"), limited.available("mock", "t")

    assert asyncio.run(scenario()) == (True, True)


def test_snapshot_shows_per_key_and_per_user_and_no_secret():
    async def scenario():
        pool = KeyPool([key("k1", concurrency_limit=1, rpm_limit=60)], max_wait=5)
        running = await pool.acquire("openai", tenant="t", user="alice")
        waiting = [
            asyncio.create_task(pool.acquire("openai", tenant="t", user="bob")) for _ in range(2)
        ]
        await asyncio.sleep(0.01)
        snap = pool.snapshot()
        running.release()
        for task in waiting:
            (await task).release()
        return snap

    snap = asyncio.run(scenario())
    k = snap["keys"][0]
    assert (k["active_leases"], k["queue_length"], k["rpm_used"], k["healthy"]) == (1, 2, 1, True)
    assert {u["user"]: (u["waiting"], u["running"]) for u in snap["users"]} == {
        "alice": (0, 1),
        "bob": (2, 0),
    }
    assert "sk-test" not in repr(snap)
    assert k["last4"] == "0000"
