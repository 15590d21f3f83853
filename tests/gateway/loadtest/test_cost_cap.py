"""Real mode: refused without a cost cap, the worst case shown before it starts, and stopped
before the cap is passed (a priced model served by the mock, added to this gateway's
catalog in memory only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.pricing import ModelInfo

PLAN: dict[str, Any] = {
    "name": "priced", "mode": "real",
    "rounds": [{"model": "mock/priced", "users": 4, "requests_per_user": 10, "max_tokens": 20,
                "stream": False, "prompt": "one two three four five six seven eight"}],
}


@pytest.fixture
def gw(make_gateway: Any) -> Any:
    gw = make_gateway(ttft_ms=10)
    gw.services.providers.catalog.models["mock/priced"] = ModelInfo(
        id="mock/priced", provider="mock", kind="chat",
        prices={"input_per_mtok": Decimal(1000), "output_per_mtok": Decimal(2000)},
    )
    return gw


def test_real_mode_needs_a_cost_cap(gw: Any) -> None:
    for body in ({"plan": PLAN},
                 {"plan": {**PLAN, "mode": "mock", "cost_cap_usd": None}, "mode": "real"}):
        response = gw.post("/api/loadtests", body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["param"] == "cost_cap_usd" and "cost cap" in error["message"]
    assert gw.get("/api/loadtests").json()["total"] == 0


def test_dry_run_shows_the_worst_case_and_starts_nothing(gw: Any) -> None:
    response = gw.post("/api/loadtests", {"plan": PLAN, "cost_cap_usd": 0.3, "dry_run": True})
    assert response.status_code == 201, response.text
    estimate = response.json()["estimate"]
    # per call: the mock's own count, 3 + 4 + 8 prompt tokens at $1000/M (exact, see
    # gateway/pricing/tokens.py), and 20 output tokens at $2000/M
    assert estimate["requests"] == 40
    assert estimate["worst_case_usd"] == pytest.approx(40 * (15 * 1000 + 20 * 2000) / 1e6)
    assert estimate["per_model"][0]["priced"] and estimate["unpriced_models"] == []
    assert gw.get("/api/loadtests").json()["total"] == 0


def test_a_real_run_stops_before_passing_its_cap(gw: Any) -> None:
    cap = 0.3
    run_id = gw.start(PLAN, cost_cap_usd=cap)
    status = gw.wait(run_id)
    assert status["status"] == "stopped_at_cap"
    assert status["rounds"][0]["status"] == "stopped_at_cap"
    samples = gw.samples(run_id)
    assert 0 < len(samples) < 40 and status["requests_done"] == len(samples)
    recorded = [r["cost_micro_usd"] for r in gw.history(source="loadtest")]
    assert len(recorded) == len(samples) and all(c and c > 0 for c in recorded)
    assert sum(recorded) <= cap * 1_000_000
    assert status["spent_usd"] == pytest.approx(sum(recorded) / 1e6)
    # it stopped because the next call's worst case no longer fitted, not earlier
    assert sum(recorded) + 55_000 > cap * 1_000_000
    report = gw.get(f"/api/loadtests/{run_id}/report").json()
    assert report["run"]["cost_cap_usd"] == cap
    assert report["overall"]["cost_usd"] == pytest.approx(sum(recorded) / 1e6)
