"""Cancelling a run mid-round keeps what ran, skips what did not, and leaves no call running."""

from __future__ import annotations

from typing import Any

PLAN: dict[str, Any] = {
    "name": "long", "rounds": [
        {"model": "mock/echo", "users": 4, "requests_per_user": 50},
        {"model": "mock/lorem", "users": 2, "requests_per_user": 2},
    ],
}


def test_cancel_mid_run_keeps_what_ran(make_gateway: Any) -> None:
    gw = make_gateway(ttft_ms=60)
    run_id = gw.start(PLAN)
    gw.call_when(run_id, lambda run: run.rounds[0].done >= 8)
    live = gw.get(f"/api/loadtests/{run_id}").json()
    assert live["status"] == "running"
    assert [r["status"] for r in live["rounds"]] == ["running", "pending"]
    assert live["rounds"][0]["figures"]["requests"] >= 8
    assert live["rounds"][0]["figures"]["latency_ms"]["p50"] >= 60  # running figures
    assert gw.get(f"/api/loadtests/{run_id}/samples").json()["total"] >= 8
    response = gw.post(f"/api/loadtests/{run_id}/cancel", {})
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["status"] == "cancelled"
    assert [r["status"] for r in status["rounds"]] == ["cancelled", "skipped"]
    done = status["requests_done"]
    assert 8 <= done < 200
    samples = gw.samples(run_id)
    finished = [s for s in samples if s["status"] != "cancelled"]
    assert len(finished) == done and {s["status"] for s in finished} == {"ok"}
    in_flight = [s for s in samples if s["status"] == "cancelled"]
    assert len(in_flight) <= 4  # at most one call per user was cut short
    report = gw.get(f"/api/loadtests/{run_id}/report").json()
    assert report["run"]["status"] == "cancelled" and report["overall"]["requests"] == done
    # the pipeline finished every abandoned call's row
    gw.client.portal.call(gw.services.calls.drain)
    rows = gw.history(source="loadtest")
    assert rows and not [r for r in rows if r["status"] == "running"]
    again = gw.post(f"/api/loadtests/{run_id}/cancel", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
