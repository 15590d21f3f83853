"""Plans: the example parses, every mistake is named by its field, rounds expand."""

from __future__ import annotations

from typing import Any

import pytest
from classroom.loadtest import EXAMPLE_PLAN

from gateway.loadtest.plans import (
    Call,
    PlanError,
    load_plan_text,
    parse_plan,
    plan_to_dict,
    with_lesson_steps,
)

BASE: dict[str, Any] = {"rounds": [{"model": "mock/echo", "users": [1, 5]}]}


def test_the_cli_example_is_a_valid_plan_and_expands_per_user_count() -> None:
    plan = load_plan_text(EXAMPLE_PLAN)
    assert plan.mode == "mock" and plan.name == "before lesson 3"
    rounds = plan.expand()
    assert [r.users for r in rounds] == [1, 5, 10, 20, 40, 20, 10]
    assert [r.index for r in rounds] == list(range(7))
    # defaults apply: 3 calls per user in bursts, the lesson's steps in lessons
    assert rounds[0].requests == 3 and rounds[5].requests == 20 * 3
    assert rounds[6].requests == 10 * 2 and rounds[6].spec.is_lesson
    assert rounds[0].spec.think_time_s == (0.5, 2.0) and rounds[5].spec.stream is False
    assert plan.total_requests == sum(r.requests for r in rounds)


@pytest.mark.parametrize(("change", "field"), [
    ({"rounds": []}, "rounds"),
    ({"rounds": [{"users": 3}]}, "rounds[0].model"),
    ({"rounds": [{"model": "mock/echo"}]}, "rounds[0].users"),
    ({"rounds": [{"model": "mock/echo", "users": [1, 0]}]}, "rounds[0].users[1]"),
    ({"rounds": [{"model": "mock/echo", "users": 2, "usres": 3}]}, "rounds[0].usres"),
    ({"rounds": [{"model": "mock/echo", "users": 2, "think_time_s": [2, 1]}]},
     "rounds[0].think_time_s[1]"),
    ({"rounds": [{"model": "mock/echo", "users": 2, "stream": "yes"}]}, "rounds[0].stream"),
    ({"rounds": [{"model": "mock/echo", "users": 2, "requests_per_user": 0}]},
     "rounds[0].requests_per_user"),
    ({"rounds": [{"users": 2, "steps": [{"prompt": "hi"}]}]}, "rounds[0].steps[0].model"),
    ({"rounds": [{"users": 2, "steps": [{"model": "mock/echo", "gap_s": -1}]}]},
     "rounds[0].steps[0].gap_s"),
    ({"mode": "fast"}, "mode"),
    ({"mode": "real"}, "cost_cap_usd"),
    ({"mode": "real", "cost_cap_usd": 0}, "cost_cap_usd"),
    ({"mode": "real", "cost_cap_usd": 1, "rounds": [{"model": "gpt-4o-mini", "users": 1,
                                                     "max_tokens": None}]},
     "rounds[0].max_tokens"),
    ({"defaults": {"users": 3}}, "defaults.users"),
    ({"seed": 1.5}, "seed"),
    ({"rounds": [{"model": "mock/echo", "users": 1000, "requests_per_user": 10_000}]}, "rounds"),
])
def test_every_mistake_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan({**BASE, **change})
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_yaml_syntax_errors_say_where() -> None:
    with pytest.raises(PlanError, match="line 2"):
        load_plan_text("rounds:\n\t- model: mock/echo\n")


def test_overrides_are_checked_again() -> None:
    plan = parse_plan(BASE)
    with pytest.raises(PlanError) as caught:
        plan.with_overrides(mode="real")
    assert caught.value.field == "cost_cap_usd"
    real = plan.with_overrides(mode="real", cost_cap_usd=0.5)
    assert (real.mode, real.cost_cap_usd) == ("real", 0.5)


def test_a_spelled_out_plan_parses_back_to_itself_with_lessons_resolved() -> None:
    plan = load_plan_text(EXAMPLE_PLAN)
    assert parse_plan(plan_to_dict(plan)).rounds == plan.rounds
    named = parse_plan({"rounds": [{"lesson": 3, "users": [2, 4], "ramp_up_s": 1}]})
    assert named.rounds[0].lesson == "3" and named.rounds[0].steps == ()
    steps = [Call("mock/echo", "hi", 5, False, 0.0), Call("mock/lorem", "more", 9, True, 1.5)]
    resolved = with_lesson_steps(named, {"3": steps}.__getitem__)
    assert resolved.rounds[0].script() == tuple(steps)
    assert resolved.total_requests == (2 + 4) * 2
    again = parse_plan(plan_to_dict(resolved))
    assert again.rounds[0].steps == tuple(steps)
