"""Figures and grades: percentiles agree with the standard library, grades with the table."""

from __future__ import annotations

import random
import statistics

import pytest

from gateway.loadtest.stats import GRADE_RULES, figures, grade, grade_table, percentile


def test_percentiles_match_statistics_quantiles_inclusive() -> None:
    rng = random.Random(3)
    for n in (2, 3, 10, 101, 250):
        values = [rng.expovariate(1 / 200) for _ in range(n)]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for q in (50, 95, 99):
            assert percentile(values, q) == pytest.approx(cuts[q - 1], rel=1e-12)
    assert percentile([], 95) is None and percentile([7.0], 99) == 7.0


@pytest.mark.parametrize(("success", "wait", "latency", "expected"), [
    (1.0, 0, 100, "A"),
    (0.99, 1000, 5000, "A"),
    (0.99, 1001, 5000, "B"),
    (0.989, 0, 100, "B"),
    (0.97, 3000, 10_000, "B"),
    (1.0, 9_000, 100, "C"),
    (0.9, 0, 100, "D"),
    (1.0, 0, 39_000, "D"),
    (0.84, 0, 100, "F"),
    (1.0, 31_000, 100, "F"),
    (0.0, None, None, "F"),
])
def test_grades_follow_the_documented_thresholds(success: float, wait: float | None,
                                                 latency: float | None, expected: str) -> None:
    assert grade(success, wait, latency) == expected


def test_the_grade_table_documents_every_rule() -> None:
    table = grade_table()
    assert [r["grade"] for r in table] == ["A", "B", "C", "D", "F"]
    for row, rule in zip(table, GRADE_RULES, strict=False):
        assert f"{rule.min_success_rate:.0%}" in row["rule"]


def test_figures_leave_out_cancelled_calls_and_count_errors_by_code() -> None:
    samples = [
        {"status": "ok", "latency_ms": 100.0, "queue_wait_ms": 10.0, "started_at": 0.0,
         "finished_at": 1.0, "completion_tokens": 5, "cost_micro_usd": 3},
        {"status": "ok", "latency_ms": 300.0, "ttft_ms": 50.0, "started_at": 0.5,
         "finished_at": 2.0},
        {"status": "error", "error_code": "queue_timeout", "latency_ms": 5.0, "started_at": 1.0,
         "finished_at": 1.1},
        {"status": "cancelled", "latency_ms": 1.0, "started_at": 1.0, "finished_at": 1.2},
    ]
    f = figures(samples)
    assert (f["requests"], f["ok"], f["errors"]) == (3, 2, 1)
    assert f["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert f["latency_ms"]["mean"] == 200.0 and f["latency_ms"]["p50"] == 200.0
    assert f["ttft_ms"]["p95"] == 50.0 and f["queue_wait_ms"]["max"] == 10.0
    assert f["errors_by_code"] == {"queue_timeout": 1}
    assert f["throughput_rps"] == pytest.approx(1.0) and f["wall_s"] == 2.0
    assert f["cost_usd"] == 3e-6 and f["grade"] == "F"
