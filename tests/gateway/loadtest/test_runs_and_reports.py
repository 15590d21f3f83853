"""A mock run through the whole pipeline: stored samples, history rows, and a report whose
percentiles and grades are recomputed here, independently, from the stored samples."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from tests.gateway.loadtest.conftest import LoadGateway

KEYS = '[[mock]]\nname = "m1"\nconcurrency_limit = 2\n'
PLAN: dict[str, Any] = {
    "name": "two models", "seed": 4,
    "rounds": [
        {"model": "mock/echo", "users": [1, 4], "requests_per_user": 3,
         "think_time_s": [0, 0.02]},
        {"model": "mock/lorem", "users": 3, "requests_per_user": 2, "stream": False,
         "max_tokens": 8},
    ],
}


def q(values: list[float], p: int) -> float:
    return float(values[0]) if len(values) == 1 else statistics.quantiles(
        values, n=100, method="inclusive")[p - 1]


def expected_grade(grades: list[dict[str, Any]], success: float, wait: float | None,
                   latency: float | None) -> str:
    for row in grades:
        if row["min_success_rate"] is None:
            return str(row["grade"])
        if success < row["min_success_rate"]:
            continue
        if row["max_p95_queue_wait_ms"] is not None and (wait or 0) > row["max_p95_queue_wait_ms"]:
            continue
        if row["max_p95_latency_ms"] is not None and (
                latency is None or latency > row["max_p95_latency_ms"]):
            continue
        return str(row["grade"])
    raise AssertionError("no grade row matched")


@pytest.fixture
def finished(make_gateway: Any) -> tuple[LoadGateway, int, dict[str, Any]]:
    gw = make_gateway(keys=KEYS, ttft_ms=20)
    run_id = gw.start(PLAN)
    return gw, run_id, gw.wait(run_id)


def test_run_goes_through_the_pipeline_as_synthetic_students(finished: Any) -> None:
    gw, run_id, status = finished
    assert status["status"] == "done"
    assert [(r["label"], r["status"], r["requests_done"]) for r in status["rounds"]] == [
        ("mock/echo × 1 users", "done", 3), ("mock/echo × 4 users", "done", 12),
        ("mock/lorem × 3 users", "done", 6)]
    assert status["requests_done"] == status["requests_planned"] == 21
    samples = gw.samples(run_id)
    assert len(samples) == 21 and {s["status"] for s in samples} == {"ok"}
    rows = {r["id"]: r for r in gw.history(source="loadtest")}
    assert sorted(rows) == sorted(s["run_id"] for s in samples)
    for s in samples:
        row = rows[s["run_id"]]
        assert row["user"] == f"loadtest-{run_id}-{s['user_idx']}"
        assert (row["role"], row["tenant"], row["status"]) == ("student", "default", "ok")
        assert row["key_name"] == "m1" and row["model"] == s["model"]
        assert s["completion_tokens"] == row["completion_tokens"]
    streamed = [s for s in samples if s["stream"]]
    assert all(0 < s["ttft_ms"] <= s["latency_ms"] for s in streamed)
    assert all(s["ttft_ms"] is None for s in samples if not s["stream"])
    # mock latency (20 ms) is a floor for every call
    assert min(s["latency_ms"] for s in samples) >= 20


def test_report_figures_are_the_stored_samples_recomputed(finished: Any) -> None:
    gw, run_id, _ = finished
    samples = gw.samples(run_id)
    report = gw.get(f"/api/loadtests/{run_id}/report").json()
    assert {(g["model"], g["users"]) for g in report["groups"]} == {
        ("mock/echo", 1), ("mock/echo", 4), ("mock/lorem", 3)}
    for group in report["groups"]:
        mine = [s for s in samples if (s["model"], s["users"]) == (group["model"], group["users"])]
        ok = [s for s in mine if s["status"] == "ok"]
        latency = [s["latency_ms"] for s in ok]
        assert group["requests"] == len(mine) and group["ok"] == len(ok)
        assert group["latency_ms"]["mean"] == pytest.approx(statistics.fmean(latency), abs=0.01)
        for p in (50, 95, 99):
            assert group["latency_ms"][f"p{p}"] == pytest.approx(q(latency, p), abs=0.01)
        ttft = [s["ttft_ms"] for s in ok if s["ttft_ms"] is not None]
        if ttft:
            assert group["ttft_ms"]["p95"] == pytest.approx(q(ttft, 95), abs=0.01)
        else:
            assert group["ttft_ms"]["p95"] is None
        waits = [s["queue_wait_ms"] for s in mine if s["queue_wait_ms"] is not None]
        assert group["queue_wait_ms"]["p95"] == (
            None if not waits else pytest.approx(q(waits, 95), abs=0.01))
        success = len(ok) / len(mine)
        assert group["success_rate"] == pytest.approx(success, abs=1e-4)
        wall = max(s["finished_at"] for s in mine) - min(s["started_at"] for s in mine)
        assert group["throughput_rps"] == pytest.approx(len(ok) / wall, rel=1e-2)
        assert group["grade"] == expected_grade(
            report["grades"], success, group["queue_wait_ms"]["p95"], group["latency_ms"]["p95"])
    assert report["overall"]["requests"] == 21
    assert set(report["charts"]) == {"latency", "success", "queue_wait", "throughput"}
    lines = report["charts"]["latency"]["data"]
    assert {t["name"] for t in lines} == {"mock/echo p50", "mock/echo p95", "mock/lorem p50",
                                          "mock/lorem p95"}
    html = gw.get(f"/api/loadtests/{run_id}/report", format="html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert f"Load test {run_id}: two models" in html.text and "Plotly.newPlot" in html.text
    for row in report["grades"]:
        assert row["rule"] in html.text


def test_listing_samples_by_round_and_permissions(finished: Any, tokens: dict[str, str]) -> None:
    gw, run_id, _ = finished
    listed = gw.get("/api/loadtests").json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "done"
    one_round = gw.get(f"/api/loadtests/{run_id}/samples", round=1).json()
    assert one_round["total"] == 12 and {s["round_idx"] for s in one_round["items"]} == {1}
    assert gw.get("/api/loadtests/999").status_code == 404
    for who in ("student_a", "teacher_a"):
        assert gw.get("/api/loadtests", token=tokens[who]).status_code == 403
        assert gw.get(f"/api/loadtests/{run_id}/report", token=tokens[who]).status_code == 403
        assert gw.post("/api/loadtests", {"plan": PLAN}, token=tokens[who]).status_code == 403


def test_plans_the_school_cannot_run_are_refused_naming_the_field(make_gateway: Any) -> None:
    gw = make_gateway()
    cases = [
        ({"rounds": [{"model": "gpt-4o-mini", "users": 1}]}, "rounds[0].model", "mock mode"),
        ({"rounds": [{"model": "mock/nope", "users": 1}]}, "rounds[0].model", "no model"),
        ({"rounds": [{"model": "mock/embed", "users": 1}]}, "rounds[0].model", "chat"),
        ({"rounds": [{"model": "mock/echo", "users": 1, "provider": "openai"}]},
         "rounds[0].provider", "served by mock"),
        ({"tenant": "nowhere", "rounds": [{"model": "mock/echo", "users": 1}]}, "tenant", ""),
        ({"rounds": [{"lesson": "03", "users": 1}]}, "rounds[0].lesson", "no lesson recording"),
    ]
    for plan, field, words in cases:
        response = gw.post("/api/loadtests", {"plan": plan})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == field and words in error["message"], error
    text = gw.post("/api/loadtests", {"plan_text": "rounds:\n  - model: mock/echo\n"})
    assert text.json()["error"]["param"] == "rounds[0].users"
    assert gw.get("/api/loadtests").json()["total"] == 0
