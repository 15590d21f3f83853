"""A load test saturating the pool does not make a real student wait: load-test calls are
in the pool's lowest tier, so a student's call takes the next free slot.

One mock key with one slot, calls of 150 ms. Twelve load-test users keep eleven calls
waiting at all times; were the tiers ignored, a student's call would wait behind them
(about 1.6 s). With the tiers, it waits at most for the one call in progress."""

from __future__ import annotations

from typing import Any

SERVICE_S = 0.15
KEYS = '[[mock]]\nname = "solo"\nconcurrency_limit = 1\n'
LOAD: dict[str, Any] = {
    "name": "saturate", "rounds": [
        {"model": "mock/echo", "users": 12, "requests_per_user": 40, "stream": False},
    ],
}


def student_calls(gw: Any, token: str, n: int) -> list[dict[str, Any]]:
    """n calls of a real student, one after the other; their history rows."""
    for i in range(n):
        response = gw.client.post(
            "/v1/chat/completions", headers={"Authorization": f"Bearer {token}"},
            json={"model": "mock/echo", "messages": [{"role": "user", "content": f"hi {i}"}]},
        )
        assert response.status_code == 200, response.text
    rows = [r for r in gw.history(source="sdk", user="stu_a") if r["status"] == "ok"]
    return rows[-n:]


def waited(row: dict[str, Any]) -> float:
    """What the student waited beyond the provider's own time: (finished - queued) - service."""
    return float(row["finished_at"] - row["queued_at"]) - SERVICE_S


def test_a_load_test_beside_a_student_does_not_raise_the_students_wait(
        make_gateway: Any, tokens: dict[str, str]) -> None:
    gw = make_gateway(keys=KEYS, ttft_ms=SERVICE_S * 1000)
    baseline = [waited(r) for r in student_calls(gw, tokens["student_a"], 3)]

    run_id = gw.start(LOAD)
    # the pool is saturated: every load-test user has a call running or waiting
    gw.call_when(run_id, lambda run: run.rounds[0].done >= 3)
    snapshot = gw.client.portal.call(gw.services.pool.snapshot)
    assert snapshot["queues"]["mock"] >= 10
    beside = student_calls(gw, tokens["student_a"], 3)
    still_waiting = gw.client.portal.call(gw.services.pool.snapshot)["queues"]["mock"]
    gw.post(f"/api/loadtests/{run_id}/cancel", {})

    with_load = [waited(r) for r in beside]
    # tiers hold: at most the call in progress (one service time) plus slack
    assert max(with_load) <= max(baseline) + SERVICE_S + 0.25, (baseline, with_load)
    # ... while the load test itself queued for far longer (what a student would have seen)
    assert still_waiting >= 8
    samples = [s for s in gw.samples(run_id) if s["status"] == "ok"]
    load_latency = sorted(s["latency_ms"] for s in samples[3:])
    assert load_latency[len(load_latency) // 2] >= 5 * SERVICE_S * 1000
    # the history's own queue wait (when the pipeline records the grant) agrees
    for row in beside:
        if row["started_at"] != row["queued_at"]:
            assert row["started_at"] - row["queued_at"] <= SERVICE_S + 0.25
