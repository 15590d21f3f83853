"""The pool's one-minute windows: exact where a key has a limit (and then bounded by it),
counted by the second where it has none, so memory does not grow with the request rate.
A grant counts for the window and the margin for dispatch jitter; a call's tokens stay
where it was granted (where the vendor counted it) when its real count replaces the
estimate."""

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


def test_a_grant_counts_for_the_window_and_the_margin():
    async def scenario():
        pool = KeyPool([key(rpm_limit=1)], window=60, margin=0.25)
        lease = pool.request("openai", tenant="school_a", user="u")
        lease.release()
        state = pool._states[("openai", "k")]
        granted = state.grants[0]
        for now, free in ((granted + 60, False), (granted + 60.2499, False),
                          (granted + 60.2501, True)):
            state.prune(now)
            assert state.fits(now, 0) is free, now
        assert pool._states[("openai", "k")].hold == 60.25

    asyncio.run(scenario())


def test_the_real_token_count_replaces_the_charge_where_the_vendor_counted_it():
    async def scenario():
        pool = KeyPool([key(tpm_limit=100)], window=60, margin=0.25)
        state = pool._states[("openai", "k")]
        lease = pool.request("openai", tenant="school_a", user="u", tokens=80)
        granted = state.token_log[0].at
        lease.used_tokens(30)  # the answer's usage: corrected at the grant, no new entry
        assert [(c.at, c.tokens) for c in state.token_log] == [(granted, 30)]
        assert state.tokens_in_window == 30
        state.prune(granted + 60.2501)  # the call leaves the window whole, never below zero
        assert state.tokens_in_window == 0 and not state.token_log
        lease.used_tokens(90)  # a correction after its window changes nothing
        assert state.tokens_in_window == 0 and not state.token_log
        lease.release()
        free = pool.request("openai", tenant="school_a", user="v", tokens=0)
        free.used_tokens(40)  # charged nothing at its grant: charged when it is known
        assert state.tokens_in_window == 40
        free.release()

    asyncio.run(scenario())
