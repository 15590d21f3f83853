"""Figures of a load test from its samples: percentiles, rates, errors and a grade.

Plain Python, so the report, the API's running figures and the tests all
compute the same numbers the same way.

Definitions (stated in every report):

- *latency*: from the moment a simulated user sends a call to the moment its
  answer is complete, successful calls only, in ms;
- *TTFT*: from sending to the first piece of text, streamed successful calls;
- *queue wait*: ``started_at - queued_at`` of the call's history row, the time it
  waited for a key of the pool;
- percentiles interpolate linearly between the closest ranks (numpy's default,
  ``statistics.quantiles(method="inclusive")``);
- *success rate*: successful calls ÷ calls that ended (cancelled calls count for
  nothing);
- *throughput*: successful calls per second of the round's wall time (first send
  to last answer).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class GradeRule:
    """A grade is given when every bound holds (None: no bound)."""

    grade: str
    min_success_rate: float
    max_p95_queue_wait_ms: float | None
    max_p95_latency_ms: float | None

    def holds(self, success: float, p95_wait: float | None, p95_latency: float | None) -> bool:
        if success < self.min_success_rate:
            return False
        if self.max_p95_queue_wait_ms is not None and (p95_wait or 0) > self.max_p95_queue_wait_ms:
            return False
        if self.max_p95_latency_ms is not None and (
            p95_latency is None or p95_latency > self.max_p95_latency_ms
        ):
            return False
        return True

    def describe(self) -> str:
        parts = [f"success ≥ {self.min_success_rate:.0%}"]
        if self.max_p95_queue_wait_ms is not None:
            parts.append(f"p95 queue wait ≤ {self.max_p95_queue_wait_ms / 1000:g} s")
        if self.max_p95_latency_ms is not None:
            parts.append(f"p95 latency ≤ {self.max_p95_latency_ms / 1000:g} s")
        return ", ".join(parts)


#: First rule that holds gives the grade; none holding gives F. What a class feels:
#: A nobody notices, B a short pause, C students start asking, D the lesson stalls.
GRADE_RULES: tuple[GradeRule, ...] = (
    GradeRule("A", 0.99, 1_000, 5_000),
    GradeRule("B", 0.97, 3_000, 10_000),
    GradeRule("C", 0.93, 10_000, 20_000),
    GradeRule("D", 0.85, 30_000, 40_000),
)
FAIL = "F"


def grade(success_rate: float, p95_queue_wait_ms: float | None,
          p95_latency_ms: float | None) -> str:
    for rule in GRADE_RULES:
        if rule.holds(success_rate, p95_queue_wait_ms, p95_latency_ms):
            return rule.grade
    return FAIL


def grade_table() -> list[dict[str, Any]]:
    """The thresholds, for reports."""
    rows: list[dict[str, Any]] = [
        {"grade": r.grade, "min_success_rate": r.min_success_rate,
         "max_p95_queue_wait_ms": r.max_p95_queue_wait_ms,
         "max_p95_latency_ms": r.max_p95_latency_ms, "rule": r.describe()}
        for r in GRADE_RULES
    ]
    rows.append({"grade": FAIL, "min_success_rate": None, "max_p95_queue_wait_ms": None,
                 "max_p95_latency_ms": None, "rule": "anything worse than D"})
    return rows


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {"mean": r(mean(values)), "p50": r(percentile(values, 50)),
            "p95": r(percentile(values, 95)), "p99": r(percentile(values, 99)),
            "max": r(max(values) if values else None)}


def figures(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of one group of samples (one round, or one model at one user count)."""
    ended = [s for s in samples if s.get("status") in ("ok", "error")]
    ok = [s for s in ended if s["status"] == "ok"]
    latency = [float(s["latency_ms"]) for s in ok if s.get("latency_ms") is not None]
    ttft = [float(s["ttft_ms"]) for s in ok if s.get("ttft_ms") is not None]
    wait = [float(s["queue_wait_ms"]) for s in ended if s.get("queue_wait_ms") is not None]
    starts = [float(s["started_at"]) for s in ended if s.get("started_at") is not None]
    ends = [float(s["finished_at"]) for s in ended if s.get("finished_at") is not None]
    wall = (max(ends) - min(starts)) if starts and ends else 0.0
    success = len(ok) / len(ended) if ended else 0.0
    lat, qw = _spread(latency), _spread(wait)
    costs = [int(s["cost_micro_usd"]) for s in ended if s.get("cost_micro_usd") is not None]
    out_tokens = sum(int(s.get("completion_tokens") or 0) for s in ok)
    return {
        "requests": len(ended),
        "ok": len(ok),
        "errors": len(ended) - len(ok),
        "success_rate": round(success, 4),
        "latency_ms": lat,
        "ttft_ms": _spread(ttft),
        "queue_wait_ms": qw,
        "throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
        "output_tokens_per_s": round(out_tokens / wall, 1) if wall > 0 else None,
        "wall_s": round(wall, 3),
        "errors_by_code": dict(Counter(str(s.get("error_code") or "unknown")
                                       for s in ended if s["status"] == "error")),
        "cost_usd": sum(costs) / 1_000_000 if costs else 0.0,
        "grade": grade(success, qw["p95"], lat["p95"]) if ended else None,
    }


def grouped(samples: Iterable[Mapping[str, Any]],
            keys: Sequence[str] = ("provider", "model", "users")) -> list[dict[str, Any]]:
    """Figures per distinct value of ``keys``, in order of first appearance."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for sample in samples:
        groups.setdefault(tuple(sample.get(k) for k in keys), []).append(sample)
    return [{**dict(zip(keys, ident, strict=True)), **figures(rows)}
            for ident, rows in groups.items()]
