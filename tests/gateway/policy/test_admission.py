"""Quotas, budgets and pauses: reservations make concurrent calls unable to overshoot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.auth import Identity
from gateway.config.tenants import load_tenants
from gateway.errors import BudgetExceeded, PausedByTeacher, QueueTimeout, QuotaExceeded
from gateway.history import HistoryStore, RunStart
from gateway.policy.admission import Admission, CallEstimate, chat_estimate
from gateway.pricing import ModelInfo
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)

REPO = Path(__file__).resolve().parents[3]
TENANTS = load_tenants(REPO / "tenants")
PRICED = ModelInfo(
    id="gpt-x",
    provider="openai",
    max_output_tokens=1000,
    prices={"input_per_mtok": Decimal("1"), "output_per_mtok": Decimal("2")},
)
FREE = CallEstimate(0, 0, 0)  # a call that costs nothing (priced at $0, not unpriced)
STUDENT = Identity("stu", "school_a", "student", frozenset({"custom:gateway:use"}))


@pytest.fixture
def history(tmp_path, database_url):
    store = HistoryStore.open(database_url or f"sqlite:///{tmp_path / 'h.sqlite'}")
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
            async with admission.admit(STUDENT, PRICED, CallEstimate(5, 5, 0)) as ticket:
                ticket.settle(0, 10)
        with pytest.raises(QuotaExceeded) as requests_error:
            async with admission.admit(STUDENT, PRICED, CallEstimate(5, 5, 0)):
                pass
        await admission.set_override("stu", "school_a", "admin", {"tokens_per_day": 100})
        with pytest.raises(QuotaExceeded) as tokens_error:
            async with admission.admit(STUDENT, PRICED, CallEstimate(50, 50, 0)):
                pass
        return requests_error.value, tokens_error.value

    requests_error, tokens_error = asyncio.run(scenario())
    assert "used 2 of your 2 requests for today" in requests_error.message
    assert "in 2 h 30 min" in requests_error.message
    assert requests_error.retry_after == pytest.approx(2.5 * 3600)
    assert (
        "used 20 of your 100 tokens" in tokens_error.message and "up to 100" in tokens_error.message
    )


async def until(condition, timeout: float = 10.0) -> None:
    """Wait (bounded) for a condition of the event loop's own state to hold."""
    async def poll():
        while not condition():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(poll(), timeout)


def test_calls_over_the_concurrency_limit_wait_their_turn_in_order(history):
    async def scenario():
        admission = Admission(history, TENANTS)
        await admission.set_override("stu", "school_a", "admin", {"concurrent_requests": 2})
        entered: list[int] = []
        release = {i: asyncio.Event() for i in range(6)}

        async def call(i):
            async with admission.admit(STUDENT, PRICED, FREE):
                entered.append(i)
                await release[i].wait()

        usage = await admission._user_usage(STUDENT)
        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(call(i)))
            # each arrives after the one before: two run, the rest queue in this order
            await until(lambda i=i: len(entered) + len(usage.waiting) == i + 1)
        first_two = list(entered)
        waiting = (await admission.status(STUDENT))["concurrent"]
        for i in range(6):
            release[i].set()
            await until(lambda i=i: len(entered) == min(6, i + 3))
        await asyncio.gather(*tasks)
        return first_two, waiting, entered, await admission.status(STUDENT)

    first_two, waiting, entered, status = asyncio.run(scenario())
    assert first_two == [0, 1]  # nobody was refused; two ran, four waited
    assert waiting == {"running": 2, "waiting": 4, "limit": 2}
    assert entered == [0, 1, 2, 3, 4, 5]  # in the order they came
    assert status["concurrent"] == {"running": 0, "waiting": 0, "limit": 2}
    assert status["requests_today"]["used"] == 0  # nothing settled, nothing leaked
    assert status["requests_today"]["reserved"] == 0


def test_a_call_waiting_too_long_for_its_turn_gets_queue_timeout(history):
    async def scenario():
        admission = Admission(history, TENANTS, queue_max_wait=0.05)
        await admission.set_override("stu", "school_a", "admin", {"concurrent_requests": 1})
        async with admission.admit(STUDENT, PRICED, FREE):
            with pytest.raises(QueueTimeout) as error:
                async with admission.admit(STUDENT, PRICED, FREE):
                    pass
            inside = await admission.status(STUDENT)
        async with admission.admit(STUDENT, PRICED, FREE):
            pass  # the slot came back; the timed-out waiter holds none
        return error.value, inside, await admission.status(STUDENT)

    error, inside, after = asyncio.run(scenario())
    assert error.code == "queue_timeout" and error.status == 429
    assert inside["concurrent"] == {"running": 1, "waiting": 0, "limit": 1}
    assert after["concurrent"]["running"] == 0


def test_a_waiting_call_is_checked_again_when_its_turn_comes(history):
    async def scenario():
        admission = Admission(history, TENANTS)
        await admission.set_override("stu", "school_a", "admin",
                                     {"concurrent_requests": 1, "usd_per_month": 0.005})
        gate = asyncio.Event()
        outcome: list[str] = []

        async def first():
            async with admission.admit(STUDENT, PRICED, CallEstimate(1, 1, 1_000)) as ticket:
                await gate.wait()
                ticket.settle(1_000, 2)

        async def second():
            try:
                async with admission.admit(STUDENT, PRICED, CallEstimate(1, 1, 3_000)):
                    outcome.append("admitted")
            except BudgetExceeded:
                outcome.append("budget_exceeded")

        usage = await admission._user_usage(STUDENT)
        one = asyncio.create_task(first())
        await until(lambda: usage.running == 1)
        two = asyncio.create_task(second())
        await until(lambda: len(usage.waiting) == 1)
        # While it waits, an admin lowers the budget: 1_000 spent + 3_000 no longer fits.
        await admission.set_override("stu", "school_a", "admin",
                                     {"concurrent_requests": 1, "usd_per_month": 0.003})
        gate.set()
        await asyncio.gather(one, two)
        return outcome, await admission.status(STUDENT)

    outcome, status = asyncio.run(scenario())
    assert outcome == ["budget_exceeded"]  # known only after the wait
    assert status["concurrent"]["running"] == 0


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
            async with admission.admit(STUDENT, PRICED, FREE):
                pass
        async with admission.admit(teacher, PRICED, FREE):
            pass
        async with admission.admit(other, PRICED, FREE):
            pass
        reloaded = Admission(history, TENANTS)
        await reloaded.load()  # pauses survive a restart
        paused_after_restart = reloaded.pause_for(STUDENT) is not None
        await admission.resume(pause["id"])
        async with admission.admit(STUDENT, PRICED, FREE):
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
        async with admission.admit(bot, PRICED, FREE):
            async with admission.admit(bot, PRICED, FREE):
                with pytest.raises(Exception) as bot_refused:
                    async with admission.admit(bot, PRICED, FREE):
                        pass
                async with admission.admit(STUDENT, PRICED, FREE):
                    async with admission.admit(STUDENT, PRICED, FREE):
                        with pytest.raises(Exception) as third_student:
                            async with admission.admit(STUDENT, PRICED, FREE):
                                pass
        return bot_refused.value, third_student.value

    bot_refused, third_student = asyncio.run(scenario())
    assert bot_refused.code == "rate_limited"
    assert third_student.code == "rate_limited"  # the cap still holds among real users


# -- the invariant, whatever the interleaving ---------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gateway.config.tenants import Tenant  # noqa: E402

CALL = st.tuples(
    st.sampled_from([STUDENT, Identity("stu2", "school_a", "student",
                                       frozenset({"custom:gateway:use"}))]),
    st.sampled_from(["gpt-x", "gpt-y"]),
    st.integers(min_value=0, max_value=4_000),  # worst case, µ$
    st.floats(min_value=0, max_value=1),  # the real cost as a share of the worst case
    st.booleans(),  # the call fails (releases, never settles)
    st.integers(min_value=0, max_value=3),  # event-loop turns it holds its reservation
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(CALL, min_size=1, max_size=40),
       personal=st.integers(min_value=0, max_value=10_000),
       school=st.integers(min_value=0, max_value=15_000),
       cap=st.integers(min_value=0, max_value=8_000))
def test_no_interleaving_of_calls_overshoots_any_budget(calls, personal, school, cap):
    """Personal, school and per-model budgets at once, calls of random worst cases that
    settle at most at their worst case or fail, interleaved at random: what is settled
    never exceeds any budget, and nothing stays reserved or running afterwards."""
    base = TENANTS["school_a"].model_dump()
    base.update(budget_usd_per_month=school / 1e6,
                model_budgets_usd_per_month={"gpt-x": cap / 1e6})
    tenants = {**TENANTS, "school_a": Tenant.model_validate(base)}

    async def scenario():
        admission = Admission(None, tenants)
        admission.controls._overrides["stu"] = {"user": "stu", "tenant": "school_a",
                                       "usd_per_month": personal / 1e6}
        settled: list[tuple[str, str, int]] = []

        async def call(who, model, worst, share, fails, turns):
            info = ModelInfo(id=model, provider="openai", prices=PRICED.prices)
            try:
                async with admission.admit(who, info, CallEstimate(1, 1, worst)) as ticket:
                    for _ in range(turns):
                        await asyncio.sleep(0)
                    if fails:
                        raise RuntimeError("provider down")
                    cost = int(worst * share)
                    ticket.settle(cost, 2)
                    settled.append((who.name, model, cost))
            except (BudgetExceeded, RuntimeError):
                pass

        await asyncio.gather(*(call(*c) for c in calls))
        return admission, settled

    admission, settled = asyncio.run(scenario())
    assert sum(c for who, _, c in settled if who == "stu") <= personal
    assert sum(c for _, _, c in settled) <= school
    assert sum(c for _, model, c in settled if model == "gpt-x") <= cap
    spend = admission._schools["school_a"]
    assert spend.reserved_micro_usd == 0 and set(spend.reserved_by_model.values()) <= {0}
    assert spend.micro_usd == sum(c for _, _, c in settled)
    for usage in admission._usage.values():
        assert (usage.reserved_micro_usd, usage.reserved_requests, usage.running) == (0, 0, 0)


def test_a_cap_on_a_model_holds_its_dated_snapshots_across_a_restart(history):
    base = TENANTS["school_a"].model_dump()
    base.update(model_budgets_usd_per_month={"gpt-4.1": 0.001})  # 1_000 µ$
    tenants = {**TENANTS, "school_a": Tenant.model_validate(base)}
    snapshot = ModelInfo(id="gpt-4.1-2025-04-14", provider="openai", prices=PRICED.prices,
                         priced_as="gpt-4.1")

    async def scenario():
        admission = Admission(history, tenants)
        async with admission.admit(STUDENT, snapshot, CallEstimate(1, 1, 700)) as ticket:
            ticket.settle(600, 2)
        run = await history.start(RunStart("stu", "school_a", "student", "sdk", "chat",
                                           "openai", "openai", snapshot.id))
        await history.finish(run, status="ok", prompt_tokens=1, completion_tokens=1,
                             cost_micro_usd=600, priced_as="gpt-4.1")
        with pytest.raises(BudgetExceeded) as live:
            async with admission.admit(STUDENT, snapshot, CallEstimate(1, 1, 700)):
                pass
        restarted = Admission(history, tenants)  # counts from the history's priced_as
        with pytest.raises(BudgetExceeded) as after_restart:
            async with restarted.admit(STUDENT, snapshot, CallEstimate(1, 1, 700)):
                pass
        return live.value, after_restart.value

    live, after_restart = asyncio.run(scenario())
    for error in (live, after_restart):
        assert error.details["limit"] == "model_usd_per_month"
        assert error.details["model"] == "gpt-4.1" and "budget for gpt-4.1" in error.message
