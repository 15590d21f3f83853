"""Lesson replay: a recorded lesson, saved under a name, predicted for a class by the
pool simulation, then run live through the gateway; the prediction matches what ran."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.loadtest.simulate import Step, simulate

SERVICE_S = 0.15
KEYS = '[[mock]]\nname = "pair"\nconcurrency_limit = 2\n'
STUDENTS, WINDOW = 12, 0.3


def record_lesson(gw: Any, token: str) -> float:
    """A teacher's pass through a two-call lesson; returns when it began."""
    began = time.time()
    for text in ("What is a token?", "And a context window?"):
        response = gw.client.post(
            "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
            json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]},
        )
        assert response.status_code == 200, response.text
    return began


@pytest.fixture
def gw(make_gateway: Any, tokens: dict[str, str]) -> Any:
    gw = make_gateway(keys=KEYS, ttft_ms=SERVICE_S * 1000)
    began = record_lesson(gw, tokens["teacher_a"])
    saved = gw.post("/api/loadtests/lessons", {"name": "03", "user": "teach_a", "since": began},
                    token=tokens["teacher_a"])
    assert saved.status_code == 201, saved.text
    assert saved.json()["calls"] == 2 and saved.json()["tenant"] == "school_a"
    return gw


def test_replay_prediction_matches_running_it(gw: Any) -> None:
    response = gw.post("/api/loadtests/replay", {
        "lesson": "03", "tenant": "school_a", "students": STUDENTS, "window_s": WINDOW,
        "target_p95_wait_s": 0.05, "run": True,
    })
    assert response.status_code == 200, response.text
    out = response.json()
    assert [s["model"] for s in out["steps"]] == ["mock/echo", "mock/echo"]
    # the mock waits SERVICE_S before its first token: a floor, not a timing to match
    # (a loaded machine only adds to it, and tests never assert on wall time)
    assert all(s["service_s"] >= SERVICE_S * 0.95 for s in out["steps"]), out["steps"]
    assert out["keys_now"] == {"mock": 1}
    predicted = out["predicted"]["steps"]
    # limits matter here: without them the class would be done much sooner
    steps = [Step("mock", s["model"], s["service_s"], s["gap_s"]) for s in out["steps"]]
    unlimited = simulate(steps, STUDENTS, WINDOW, []).step_figures()
    assert predicted[1]["p95_done_s"] - unlimited[1]["p95_done_s"] > 0.5
    assert predicted[0]["p95_wait_s"] > 0.2

    run_id = out["loadtest"]["id"]
    status = gw.wait(run_id)
    assert status["status"] == "done" and status["tenant"] == "school_a"
    report = gw.get(f"/api/loadtests/{run_id}/report").json()
    measured = report["lesson_steps"]
    assert [m["step"] for m in measured] == [0, 1]
    for p, m in zip(predicted, measured, strict=True):
        assert m["calls"] == STUDENTS and m["success_rate"] == 1.0
        tolerance = 0.1 + 0.15 * p["p95_done_s"]
        assert m["p95_done_s"] == pytest.approx(p["p95_done_s"], abs=tolerance), (p, m)
        if m["p95_wait_s"] is not None:  # when the pipeline records the key's grant
            assert m["p95_wait_s"] == pytest.approx(p["p95_wait_s"], abs=tolerance)

    plan = out["key_plan"]
    assert plan["met"] and plan["keys_needed"]["mock"] > 1
    assert plan["predicted"]["p95_wait_s"] <= 0.05


def test_teachers_plan_their_own_school_only(gw: Any, tokens: dict[str, str]) -> None:
    mine = gw.post("/api/loadtests/replay", {"lesson": "03", "students": 5, "window_s": 10},
                   token=tokens["teacher_a"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["lesson"]["user"] == "teach_a"
    other = gw.post("/api/loadtests/replay", {"lesson": "03", "tenant": "school_a",
                                              "students": 5}, token=tokens["teacher_b"])
    assert other.status_code == 403
    student = gw.post("/api/loadtests/replay", {"lesson": "03", "students": 5},
                      token=tokens["student_a"])
    assert student.status_code == 403
    run = gw.post("/api/loadtests/replay", {"lesson": "03", "students": 5, "run": True},
                  token=tokens["teacher_a"])
    assert run.status_code == 403
    missing = gw.post("/api/loadtests/replay", {"lesson": "99", "students": 5},
                      token=tokens["teacher_a"])
    assert missing.status_code == 400
    assert "no lesson recording" in missing.json()["error"]["message"]
    listed = gw.get("/api/loadtests/lessons", token=tokens["teacher_b"]).json()["lessons"]
    assert listed == []
    assert [x["name"] for x in gw.get("/api/loadtests/lessons").json()["lessons"]] == ["03"]
