"""The pool simulation against hand-worked cases, and the key planner's minimality."""

from __future__ import annotations

import pytest

from gateway.loadtest.simulate import (
    WINDOW,
    KeyLimits,
    SimulationError,
    Step,
    configuration,
    plan_keys,
    predict,
    simulate,
)

ECHO = Step("mock", "mock/echo", service_s=0.2)


def test_concurrency_two_serves_six_simultaneous_students_in_three_waves() -> None:
    sim = simulate([ECHO], 6, 0.0, [KeyLimits("mock", "k", concurrency_limit=2)])
    assert sorted(sim.waits[0]) == pytest.approx([0, 0, 0.2, 0.2, 0.4, 0.4])
    assert sorted(sim.finished[0]) == pytest.approx([0.2, 0.2, 0.4, 0.4, 0.6, 0.6])


def test_students_arrive_evenly_over_the_window() -> None:
    sim = simulate([ECHO], 4, 1.0, [KeyLimits("mock", "k", concurrency_limit=1)])
    assert sim.arrivals == [0.0, 0.25, 0.5, 0.75]
    assert max(sim.waits[0]) == 0.0  # each call ends before the next student arrives


def test_rpm_window_holds_calls_for_a_minute() -> None:
    sim = simulate([Step("mock", "m", 0.1)], 5, 0.0, [KeyLimits("mock", "k", rpm_limit=3)])
    # a grant counts for the window and the pool's margin for dispatch jitter
    assert sorted(sim.waits[0]) == pytest.approx([0, 0, 0, WINDOW, WINDOW])
    assert 60 < WINDOW < 61


def test_tpm_window_and_priorities() -> None:
    big = Step("mock", "m", 0.1, tokens=600)
    sim = simulate([big], 3, 0.0, [KeyLimits("mock", "k", tpm_limit=1000)])
    assert sorted(sim.waits[0]) == pytest.approx([0, WINDOW, 2 * WINDOW])
    keys = [KeyLimits("mock", "low", concurrency_limit=1, priority=0),
            KeyLimits("mock", "high", concurrency_limit=1, priority=5)]
    assert sorted(simulate([ECHO], 2, 0.0, keys).waits[0]) == [0.0, 0.0]


def test_pauses_between_steps_and_unlimited_mock() -> None:
    steps = [ECHO, Step("mock", "mock/echo", 0.2, gap_s=1.0)]
    sim = simulate(steps, 3, 0.0, [])
    assert sim.finished[1] == pytest.approx([1.4, 1.4, 1.4])
    summary = sim.summary()
    assert summary["p95_wait_s"] == 0.0 and summary["p95_lesson_s"] == pytest.approx(1.4)


def test_a_provider_without_keys_cannot_be_planned() -> None:
    with pytest.raises(SimulationError, match="no openai key"):
        simulate([Step("openai", "gpt-4o-mini", 1.0)], 3, 0.0, [])


def test_plan_keys_finds_the_smallest_count_that_meets_the_target() -> None:
    real = [KeyLimits("openai", "main", concurrency_limit=2, rpm_limit=500)]
    steps = [Step("openai", "gpt-4o-mini", 2.0), Step("openai", "gpt-4o-mini", 2.0, gap_s=5)]
    plan = plan_keys(steps, 40, 20.0, real, target_p95_wait_s=1.0)
    assert plan.met
    n = plan.counts["openai"]
    assert n > 1
    waits = simulate(steps, 40, 20.0, configuration(real, {"openai": n})).provider_p95_wait()
    assert waits["openai"] <= 1.0
    fewer = simulate(steps, 40, 20.0, configuration(real, {"openai": n - 1}))
    assert fewer.provider_p95_wait()["openai"] > 1.0
    assert [k.name for k in plan.keys][:2] == ["main", "main+1"]


def test_predict_reports_steps_with_todays_keys_and_the_plan() -> None:
    real = [KeyLimits("mock", "k", concurrency_limit=1), KeyLimits("openai", "o")]
    out = predict([ECHO, ECHO], 4, 0.0, real, 0.1)
    assert out["keys_now"] == {"mock": 1}
    assert [k["name"] for k in out["current_keys"]] == ["k"]
    assert out["predicted"]["steps"][0]["p95_wait_s"] == pytest.approx(0.57, abs=0.01)
    assert out["key_plan"]["keys_needed"] == {"mock": 4} and out["key_plan"]["met"]
