"""The attempt loop in plain Python, on the real key pool: backoff with full jitter
honouring Retry-After, bounded attempts and waiting, failover to another key, and keys
refused with 401 taken out of use."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import (
    InvalidRequest,
    NoKeyAvailable,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
)
from gateway.keypool import KeyPool, ProviderKey
from gateway.providers.retry import Attempts, Claimant, RetryPolicy

WHO = Claimant("school_a", "stu1")


def key(name: str, priority: int = 0) -> ProviderKey:
    return ProviderKey("openai", name, secret=f"sk-{name}-000000", priority=priority)


def failure(kind: type, status: int, retry_after: float | None = None) -> Exception:
    error = kind("scripted", retry_after=retry_after)
    error.upstream_status = status
    return error


class Script:
    """An attempt that fails as told, then answers with the key it was given."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.keys: list[str] = []

    async def __call__(self, key, stack):
        self.keys.append(key.name)
        if self.failures:
            raise self.failures.pop(0)
        return f"answer from {key.name}"


def run(pool: KeyPool, script: Script, policy: RetryPolicy | None = None,
        rng: float = 0.5) -> tuple[str, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> str:
        attempts = Attempts(pool, policy or RetryPolicy(3, 1.0, 8.0, 30.0), sleep=sleep,
                            rng=lambda: rng)
        async with attempts.run("openai", WHO, script) as outcome:
            return outcome.result

    return asyncio.run(go()), slept


def test_fails_twice_then_succeeds_with_jittered_backoff():
    script = Script(failure(ProviderUnavailable, 503), failure(ProviderUnavailable, 502))
    answer, slept = run(KeyPool([key("only")]), script, rng=0.5)
    assert answer == "answer from only" and script.keys == ["only"] * 3
    assert slept == [0.5, 1.0]  # half of the ceilings 1 s and 2 s (full jitter, rng = 0.5)


def test_retry_after_is_a_floor_for_the_wait():
    script = Script(failure(ProviderRateLimited, 429, retry_after=0.01), failure(
        ProviderUnavailable, 503, retry_after=4.0))
    _, slept = run(KeyPool([key("only")]), script, rng=0.1)
    assert slept == [0.1, 4.0]  # jitter 0.1 > 0.01; then 4 s > jitter 0.2


def test_rate_limited_key_fails_over_to_the_next_without_waiting():
    pool = KeyPool([key("first", priority=10), key("second", priority=1)])
    script = Script(failure(ProviderRateLimited, 429, retry_after=30))
    answer, slept = run(pool, script)
    assert answer == "answer from second" and script.keys == ["first", "second"] and slept == []


def test_attempts_and_total_wait_are_bounded():
    always = Script(*[failure(ProviderUnavailable, 503) for _ in range(10)])
    with pytest.raises(ProviderUnavailable):
        run(KeyPool([key("only")]), always)
    assert len(always.keys) == 3
    patient = Script(failure(ProviderRateLimited, 429, retry_after=120))
    with pytest.raises(ProviderRateLimited) as raised:
        run(KeyPool([key("only")]), patient, RetryPolicy(5, 0.1, 8.0, total_wait=30))
    assert patient.keys == ["only"] and raised.value.retry_after == 120


def test_refused_key_is_taken_out_and_the_next_one_used():
    pool = KeyPool([key("revoked", priority=10), key("good", priority=1)])
    script = Script(failure(ProviderAuthFailed, 401))
    answer, slept = run(pool, script)
    assert answer == "answer from good" and slept == []
    again = Script()
    assert run(pool, again)[0] == "answer from good" and again.keys == ["good"]
    lonely = KeyPool([key("revoked")])
    with pytest.raises(ProviderAuthFailed):
        run(lonely, Script(failure(ProviderAuthFailed, 403)))
    assert not lonely.available("openai", "school_a")
    with pytest.raises(NoKeyAvailable):
        run(lonely, Script())


def test_caller_mistakes_are_not_retried():
    script = Script(InvalidRequest("bad field", param="x"))
    with pytest.raises(InvalidRequest):
        run(KeyPool([key("only")]), script)
    assert script.keys == ["only"]
