"""Usage aggregates, cost estimate, live activity and student drill-down (/api/usage*,
/api/activity, /api/students/*), on a history seeded with ``gateway.history.demo``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.history import demo
from gateway.history.models import runs
from gateway.history.usage import aggregate, estimate, parse_time, percentile
from gateway.pricing import Catalog
from tests.conftest import both_databases  # noqa: E402,F401  (every test on SQLite and PostgreSQL)


@pytest.fixture
def client(gateway_client: TestClient) -> Iterator[TestClient]:
    services = gateway_client.app.app.state.services  # type: ignore[attr-defined]
    with services.history.engine.begin() as connection:
        demo.seed(connection)
    yield gateway_client


def get(client: TestClient, token: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def status(client: TestClient, token: str, path: str, **params: Any) -> int:
    return client.get(path, params=params, headers={"Authorization": f"Bearer {token}"}).status_code


def db_runs(client: TestClient, **where: str) -> list[dict[str, Any]]:
    services = client.app.app.state.services  # type: ignore[attr-defined]
    query = select(runs).where(*[getattr(runs.c, k) == v for k, v in where.items()])
    with services.history.engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


# -- plain functions -------------------------------------------------------------------


def test_percentile_is_linear_between_closest_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([0, 10], 95) == 9.5
    assert percentile([10, 1, 7], 0) == 1 and percentile([10, 1, 7], 100) == 10


def test_aggregate_counts_errors_tokens_cost_and_latency() -> None:
    rows = [
        {"user": "a", "status": "ok", "queued_at": 0, "started_at": 1, "finished_at": 1.5,
         "first_token_at": 1.1, "prompt_tokens": 10, "completion_tokens": 5,
         "cost_micro_usd": 1500, "cost_status": "priced", "model": "m1"},
        {"user": "b", "status": "error", "queued_at": 3600, "started_at": 3600,
         "finished_at": 3601, "first_token_at": None, "prompt_tokens": None,
         "completion_tokens": None, "cost_micro_usd": None, "cost_status": None, "model": "m1"},
        {"user": "a", "status": "ok", "queued_at": 90000, "started_at": 90000,
         "finished_at": 90002, "first_token_at": None, "prompt_tokens": 1,
         "completion_tokens": 1, "cost_micro_usd": None, "cost_status": "unpriced", "model": "m2"},
    ]
    report = aggregate(rows, "day")
    assert [r["key"] for r in report["rows"]] == ["1970-01-01", "1970-01-02"]
    totals = report["totals"]
    assert totals["requests"] == 3 and totals["errors"] == 1 and totals["error_rate"] == 0.3333
    assert totals["total_tokens"] == 17 and totals["cost_usd"] == 0.0015
    assert totals["unpriced_requests"] == 1 and totals["users"] == 2
    assert totals["latency_ms_p50"] == 1250.0  # of 500 and 2000 ms; errors have no latency
    assert [r["key"] for r in aggregate(rows, "hour")["rows"]][:2] == [
        "1970-01-01T00:00:00+00:00", "1970-01-01T01:00:00+00:00"
    ]
    assert {r["key"]: r["requests"] for r in aggregate(rows, "model")["rows"]} == {"m1": 2, "m2": 1}


def test_estimate_projects_the_daily_rate_to_the_end_of_the_period() -> None:
    catalog = Catalog.load()
    start, now, end = 0.0, 10 * 86400.0, 30 * 86400.0
    rows = [{"model": "gpt-4o-mini", "provider": "openai", "prompt_tokens": 1_000_000,
             "completion_tokens": 0, "cost_micro_usd": None}]
    result = estimate(rows, catalog, start, end, now)
    price = float(catalog.get("gpt-4o-mini").prices["input_per_mtok"])
    assert result["at_current_prices_usd"] == pytest.approx(price)
    assert result["recorded_usd"] == 0
    assert result["projected_usd"] == pytest.approx(price * 3)
    assert result["models"][0]["priced"] is True
    unpriced = estimate([{"model": "no-such", "provider": None, "prompt_tokens": 5,
                          "completion_tokens": 5, "cost_micro_usd": None}], catalog, 0, 1, 2)
    assert unpriced["unpriced_models"] == ["no-such"]


def test_parse_time_accepts_dates_and_times() -> None:
    assert parse_time("1970-01-02") == 86400
    assert parse_time("1970-01-02", end=True) == 2 * 86400
    assert parse_time("1970-01-01T01:00:00Z") == 3600
    assert parse_time(None) is None


# -- /api/usage ------------------------------------------------------------------------------


def test_admin_totals_match_the_database(client: TestClient, tokens: dict[str, str]) -> None:
    report = get(client, tokens["admin"], "/api/usage", group_by="tenant")
    everything = db_runs(client)
    assert report["totals"]["requests"] == len(everything)
    assert report["totals"]["cost_usd"] == pytest.approx(
        sum(r["cost_micro_usd"] or 0 for r in everything) / 1e6
    )
    assert {r["key"] for r in report["rows"]} == {"school_a", "school_b", "default"}


def test_teacher_sees_own_school_grouped_by_user(
    client: TestClient, tokens: dict[str, str]
) -> None:
    report = get(client, tokens["teacher_a"], "/api/usage", group_by="user")
    assert {r["key"] for r in report["rows"]} == {"stu_a", "stu_a2", "teach_a"}
    assert report["filters"]["tenant"] == "school_a"
    assert report["totals"]["requests"] == len(db_runs(client, tenant="school_a"))
    # a user of another school is simply not in the teacher's scope
    assert get(client, tokens["teacher_a"], "/api/usage", user="stu_b")["totals"]["requests"] == 0
    assert status(client, tokens["teacher_a"], "/api/usage", tenant="school_b") == 403


def test_student_sees_only_themselves(client: TestClient, tokens: dict[str, str]) -> None:
    report = get(client, tokens["student_a"], "/api/usage", group_by="user")
    assert [r["key"] for r in report["rows"]] == ["stu_a"]
    assert status(client, tokens["student_a"], "/api/usage", user="stu_a2") == 403
    assert status(client, tokens["student_a"], "/api/usage", tenant="school_b") == 403


def test_filters_and_groupings(client: TestClient, tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    by_model = get(client, admin, "/api/usage", group_by="model", provider="openai")
    assert {r["key"] for r in by_model["rows"]} <= {"gpt-4o-mini", "gpt-4.1"}
    one = get(client, admin, "/api/usage", group_by="none", model="gpt-4.1")
    assert one["totals"]["requests"] == len(db_runs(client, model="gpt-4.1"))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    days = get(client, admin, "/api/usage", group_by="day", start=today, end=today)
    assert [r["key"] for r in days["rows"]] in ([today], [])
    hours = get(client, admin, "/api/usage", group_by="hour")
    assert all(r["key"].endswith(":00:00+00:00") for r in hours["rows"])
    for row in get(client, admin, "/api/usage", group_by="provider")["rows"]:
        assert row["latency_ms_p50"] is None or row["latency_ms_p50"] <= row["latency_ms_p99"]
    assert status(client, admin, "/api/usage", group_by="weekday") == 422
    assert status(client, admin, "/api/usage", start="yesterday") == 400


# -- /api/usage/me and /api/usage/estimate -------------------------------------------------


def test_usage_me_shows_today_month_and_limits(client: TestClient, tokens: dict[str, str]) -> None:
    mine = get(client, tokens["student_a"], "/api/usage/me")
    assert mine["user"] == "stu_a" and mine["role"] == "student"
    assert mine["month"]["requests"] >= mine["today"]["requests"] >= 1  # a run is live now
    assert mine["quota"]["usd_per_month"] == 5.0
    assert mine["limits"]["budget_month"]["limit_usd"] == 5.0


def test_estimate_for_this_month(client: TestClient, tokens: dict[str, str]) -> None:
    result = get(client, tokens["teacher_a"], "/api/usage/estimate")
    assert result["filters"]["tenant"] == "school_a"
    assert result["projected_usd"] >= result["at_current_prices_usd"] >= 0
    assert {m["model"] for m in result["models"]} <= set(demo.MODELS) | {"(none)"}
    assert status(client, tokens["student_a"], "/api/usage/estimate", tenant="school_b") == 403
    bad = client.get("/api/usage/estimate", params={"start": "2025-02-01", "end": "2025-01-01"},
                     headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert bad.status_code == 400


# -- /api/activity ------------------------------------------------------------------------------


def test_activity_shows_running_calls_of_the_callers_scope(
    client: TestClient, tokens: dict[str, str]
) -> None:
    admin = get(client, tokens["admin"], "/api/activity")
    assert {r["user"] for r in admin["running"]} == {"stu_a", "stu_b", "root_admin"}
    assert len(admin["per_minute"]) == 15
    teacher = get(client, tokens["teacher_a"], "/api/activity", window_minutes=5)
    assert [r["user"] for r in teacher["running"]] == ["stu_a"]
    assert {u["user"] for u in teacher["active_users"]} == {"stu_a"}
    assert teacher["budget"]["per_student_usd"] == 5.0
    assert teacher["budget"]["limit_usd"] == 5.0 * teacher["budget"]["students_this_month"]
    student = get(client, tokens["student_a2"], "/api/activity")
    assert student["running"] == [] and student["scope"]["user"] == "stu_a2"


# -- /api/students/{user} -------------------------------------------------------------------------


def test_teacher_drills_into_own_student(client: TestClient, tokens: dict[str, str]) -> None:
    work = get(client, tokens["teacher_a"], "/api/students/stu_a")
    assert work["tenants"] == ["school_a"] and work["role"] == "student"
    assert work["usage"]["all_time"]["requests"] == len(db_runs(client, user="stu_a"))
    assert work["runs"] and all(r["user"] == "stu_a" for r in work["runs"])
    (conversation,) = work["conversations"]
    assert [m["content"] for m in conversation["messages"]][0] == "note-stu_a-message 0"
    assert isinstance(work["artifacts"], list)


def test_drill_down_refuses_other_schools_and_classmates(
    client: TestClient, tokens: dict[str, str]
) -> None:
    assert status(client, tokens["teacher_a"], "/api/students/stu_b") == 404
    assert status(client, tokens["teacher_a"], "/api/students/nobody") == 404
    assert status(client, tokens["student_a"], "/api/students/stu_a2") == 403
    assert get(client, tokens["student_a"], "/api/students/stu_a")["user"] == "stu_a"
    assert get(client, tokens["admin"], "/api/students/stu_b")["tenants"] == ["school_b"]


def test_group_by_several_dimensions(client: TestClient, tokens: dict[str, str]) -> None:
    report = get(client, tokens["admin"], "/api/usage", group_by="day,tenant,model")
    assert report["group_by"] == "day,tenant,model"
    first = report["rows"][0]
    assert {"day", "tenant", "model"} <= set(first)
    assert first["key"] == f"{first['day']} / {first['tenant']} / {first['model']}"
    assert sum(r["requests"] for r in report["rows"]) == report["totals"]["requests"]
    assert status(client, tokens["admin"], "/api/usage", group_by="day,,model") == 422
