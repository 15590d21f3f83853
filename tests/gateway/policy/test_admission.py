"""Quotas, budgets and pauses: reservations make concurrent calls unable to overshoot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.auth import Identity
from gateway.errors import BudgetExceeded, PausedByTeacher, QuotaExceeded
from gateway.history import HistoryStore, RunStart
from gateway.policy.admission import Admission, CallEstimate, chat_estimate
from gateway.pricing import ModelInfo
from gateway.tenants import load_tenants

REPO = Path(__file__).resolve().parents[3]
TENANTS = load_tenants(REPO / "tenants")
PRICED = ModelInfo(
    id="gpt-x",
    provider="openai",
    max_output_tokens=1000,
    prices={"input_per_mtok": Decimal("1"), "output_per_mtok": Decimal("2")},
)
STUDENT = Identity("stu", "school_a", "student", frozenset({"custom:gateway:use"}))


@pytest.fixture
def history(tmp_path):
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.sqlite'}")
    yield store
    store.close()


def test_fifty_concurrent_calls_racing_for_the_last_cent_never_overshoot(history):
    async def scenario():
        admission = Admission(history, TENANTS)
        await admission.set_override(
            "stu", "school_a", "admin", {"usd_per_month": 0.01}
        )  # 10_000 µ$
        estimate = CallEstimate(10, 10, 3_000)  # each call may cost up to 3_000 µ$
        admitted, refused = [], []
        gate = asyncio.Event()

        async def call(i):
            try:
                async with admission.admit(STUDENT, PRICED, estimate) as ticket:
                    admitted.append(i)
                    await gate.wait()  # all hold their reservation at once
                    ticket.settle(2_500, 20)
            except BudgetExceeded as error:
                refused.append(error)

        tasks = [asyncio.create_task(call(i)) for i in range(50)]
        while len(admitted) + len(refused) < 50:
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        status = await admission.status(STUDENT)
        return admitted, refused, status

    admitted, refused, status = asyncio.run(scenario())
    assert len(admitted) == 3  # 3 × 3_000 ≤ 10_000 < 4 × 3_000
    assert len(refused) == 47
    assert status["budget_month"]["spent_usd"] == pytest.approx(0.0075)  # settled at real cost
    assert status["budget_month"]["spent_usd"] <= 0.01
    message = refused[0].message
    assert "$0.01 budget" in message and "resets on 01" in message
    assert refused[0].code == "budget_exceeded" and refused[0].status == 429


def test_failed_call_releases_its_reservation(history):
    async def scenario():
        admission = Admission(history, TENANTS)
        await admission.set_override("stu", "school_a", "admin", {"usd_per_month": 0.005})
        for _ in range(5):
            with pytest.raises(RuntimeError):
                async with admission.admit(STUDENT, PRICED, CallEstimate(1, 1, 4_000)):
                    raise RuntimeError("provider down")
        async with admission.admit(STUDENT, PRICED, CallEstimate(1, 1, 4_000)) as ticket:
            ticket.settle(100, 2)
        return await admission.status(STUDENT)

    status = asyncio.run(scenario())
    assert status["budget_month"]["spent_usd"] == pytest.approx(0.0001)
    assert status["requests_today"]["used"] == 1


def test_request_and_token_quotas_say_what_was_used_and_when_it_resets(history):
    clock = lambda: datetime(2026, 11, 21, 21, 30, tzinfo=UTC)  # noqa: E731

    async def scenario():
        admission = Admission(history, TENANTS, clock=clock)
        await admission.set_override(
            "stu", "school_a", "admin", {"requests_per_day": 2, "tokens_per_day": 100}
        )
        for _ in range(2):
            async with admission.admit(STUDENT, PRICED, CallEstimate(5, 5)) as ticket:
                ticket.settle(0, 10)
        with pytest.raises(QuotaExceeded) as requests_error:
            async with admission.admit(STUDENT, PRICED, CallEstimate(5, 5)):
                pass
        await admission.set_override("stu", "school_a", "admin", {"tokens_per_day": 100})
        with pytest.raises(QuotaExceeded) as tokens_error:
            async with admission.admit(STUDENT, PRICED, CallEstimate(50, 50)):
                pass
        return requests_error.value, tokens_error.value

    requests_error, tokens_error = asyncio.run(scenario())
    assert "used 2 of your 2 requests for today" in requests_error.message
    assert "in 2 h 30 min" in requests_error.message
    assert requests_error.retry_after == pytest.approx(2.5 * 3600)
    assert (
        "used 20 of your 100 tokens" in tokens_error.message and "up to 100" in tokens_error.message
    )


def test_concurrency_limit_per_user(history):
    async def scenario():
        admission = Admission(history, TENANTS)
        await admission.set_override("stu", "school_a", "admin", {"concurrent_requests": 2})
        async with admission.admit(STUDENT, PRICED, CallEstimate()):
            async with admission.admit(STUDENT, PRICED, CallEstimate()):
                with pytest.raises(QuotaExceeded) as error:
                    async with admission.admit(STUDENT, PRICED, CallEstimate()):
                        pass
        async with admission.admit(STUDENT, PRICED, CallEstimate()):
            pass  # slots are back
        return error.value

    assert "2 calls running" in asyncio.run(scenario()).message


def test_counters_start_from_history(history):
    async def scenario():
        for cost in (400_000, 500_000):
            run = await history.start(
                RunStart("stu", "school_a", "student", "sdk", "chat", "openai", "openai", "gpt-x")
            )
            await history.finish(
                run, status="ok", prompt_tokens=10, completion_tokens=5, cost_micro_usd=cost
            )
        admission = Admission(history, TENANTS)
        await admission.set_override("stu", "school_a", "admin", {"usd_per_month": 1.0})
        with pytest.raises(BudgetExceeded) as error:
            async with admission.admit(STUDENT, PRICED, CallEstimate(1, 1, 200_000)):
                pass
        return await admission.status(STUDENT), error.value

    status, error = asyncio.run(scenario())
    assert status["requests_today"]["used"] == 2 and status["tokens_today"]["used"] == 30
    assert status["budget_month"]["spent_usd"] == pytest.approx(0.9)
    assert "$0.90 of your $1.00" in error.message


def test_teacher_pause_applies_to_students_of_that_school_only(history):
    teacher = Identity("t", "school_a", "teacher", frozenset({"custom:gateway:use"}))
    other = Identity("b", "school_b", "student", frozenset({"custom:gateway:use"}))

    async def scenario():
        admission = Admission(history, TENANTS)
        pause = await admission.pause("school_a", None, "t", "eyes on the board")
        with pytest.raises(PausedByTeacher) as error:
            async with admission.admit(STUDENT, PRICED, CallEstimate()):
                pass
        async with admission.admit(teacher, PRICED, CallEstimate()):
            pass
        async with admission.admit(other, PRICED, CallEstimate()):
            pass
        reloaded = Admission(history, TENANTS)
        await reloaded.load()  # pauses survive a restart
        paused_after_restart = reloaded.pause_for(STUDENT) is not None
        await admission.resume(pause["id"])
        async with admission.admit(STUDENT, PRICED, CallEstimate()):
            pass
        return error.value, paused_after_restart

    error, paused_after_restart = asyncio.run(scenario())
    assert error.code == "paused_by_teacher" and "eyes on the board" in error.message
    assert paused_after_restart


def test_tenant_role_quota_is_the_default(history):
    admission = Admission(history, TENANTS)
    limits = admission.limits_for(STUDENT)
    quota = TENANTS["school_a"].quotas["student"]
    assert limits.requests_per_day == quota.requests_per_day
    assert limits.micro_usd_per_month == round(quota.usd_per_month * 1_000_000)


def test_chat_estimate_is_the_worst_case():
    estimate = chat_estimate(PRICED, prompt_tokens=100, max_output=None)
    assert estimate.max_output_tokens == 1000
    assert estimate.worst_case_micro_usd == 100 * 1 + 1000 * 2
    unpriced = chat_estimate(ModelInfo(id="x", provider="openai"), 10, 20)
    assert unpriced.worst_case_micro_usd is None and unpriced.tokens == 30


def test_load_tests_never_take_a_students_place_under_the_global_cap(history):
    bot = Identity("loadtest-1-0", "school_a", "student", frozenset({"custom:gateway:use"}),
                   kind="loadtest")

    async def scenario():
        admission = Admission(history, TENANTS, global_concurrency=2)
        async with admission.admit(bot, PRICED, CallEstimate()):
            async with admission.admit(bot, PRICED, CallEstimate()):
                with pytest.raises(Exception) as bot_refused:
                    async with admission.admit(bot, PRICED, CallEstimate()):
                        pass
                async with admission.admit(STUDENT, PRICED, CallEstimate()):
                    async with admission.admit(STUDENT, PRICED, CallEstimate()):
                        with pytest.raises(Exception) as third_student:
                            async with admission.admit(STUDENT, PRICED, CallEstimate()):
                                pass
        return bot_refused.value, third_student.value

    bot_refused, third_student = asyncio.run(scenario())
    assert bot_refused.code == "rate_limited"
    assert third_student.code == "rate_limited"  # the cap still holds among real users
