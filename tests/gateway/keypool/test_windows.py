"""The pool's one-minute windows: exact where a key has a limit (and then bounded by it),
counted by the second where it has none, so memory does not grow with the request rate."""

from __future__ import annotations

import asyncio

from gateway.keypool import KeyPool, ProviderKey
from gateway.keypool.pool import MinuteCounts


def key(**limits):
    return ProviderKey(provider="openai", name="k", secret="sk-test-window-0000", **limits)


def test_minute_counts_keep_the_last_minute_in_constant_memory():
    counts = MinuteCounts()
    for i in range(12_000):  # 100 a second for two minutes
        counts.add(1000 + i / 100, 2)
    assert len(counts.seconds) == len(counts.amounts) == 61
    assert counts.total(1119.99) == 60 * 100 * 2  # seconds 1060..1119
    assert counts.total(1200) == 0
    recent = counts.recent(1119.5)
    assert recent[0] == (1061.0, 200) and recent[-1] == (1120.0, 200)  # each at its end


def grant(pool, n, tokens=0):
    for _ in range(n):
        lease = pool.request("openai", tenant="school_a", user="u", tokens=tokens)
        lease.release()


def test_unlimited_key_counts_without_keeping_every_grant_and_a_new_limit_starts_full():
    async def scenario():
        pool = KeyPool([key()], max_wait=1)
        grant(pool, 500, tokens=10)
        state = pool._states[("openai", "k")]
        assert len(state.grants) == 0 and len(state.token_log) == 0  # nothing per call
        now = asyncio.get_running_loop().time()
        assert (state.rpm_used(now), state.tpm_used(now)) == (500, 5000)
        keys = {k["name"]: k for k in pool.snapshot()["keys"]}
        assert (keys["k"]["rpm_used"], keys["k"]["tpm_used"]) == (500, 5000)
        # an admin sets RPM 500 now: the minute's 500 calls count against it at once
        pool.upsert_key(key(rpm_limit=500, tpm_limit=100_000))
        assert len(state.grants) == 500 and state.tokens_in_window == 5000
        waiter = pool.request("openai", tenant="school_a", user="u")
        assert not hasattr(waiter, "release")  # queued, not granted
        pool._abandon(waiter)
        # the limit removed again: the exact times go, the count stays
        pool.upsert_key(key(rpm_limit=None))
        assert len(state.grants) == 0 and state.rpm_used(now) == 500

    asyncio.run(scenario())
