"""The report of a load test: figures per provider/model and user count, a grade,
comparison charts, and the same as one self-contained HTML page.

Everything is computed from the stored samples (:mod:`gateway.loadtest.stats`),
so the report, the API, the CLI's JSON and the widget agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.loadtest import stats
from gateway.safehtml import Safe, escape, html, join

DEFINITIONS = {
    "latency_ms": "From sending a call to its complete answer, as the simulated student "
                  "saw it; successful calls only.",
    "ttft_ms": "From sending to the first piece of text; streamed successful calls only.",
    "queue_wait_ms": "started_at − queued_at of the call's history row: the time it waited "
                     "for a key of the pool (load tests wait behind every real student).",
    "percentiles": "Linear interpolation between the closest ranks (numpy's default).",
    "success_rate": "Successful calls ÷ calls that ended; cancelled calls are left out.",
    "throughput_rps": "Successful calls per second of the group's wall time (first send to "
                      "last answer).",
    "grade": "The first grade whose every bound holds (table below); otherwise F.",
}
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def build_report(run: Mapping[str, Any], rounds: Sequence[Mapping[str, Any]],
                 samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The report's figures (JSON-ready): groups, rounds, lesson steps, overall, charts."""
    groups = sorted(stats.grouped(samples, ("provider", "model", "users")),
                    key=lambda g: (str(g["provider"]), str(g["model"]), g["users"]))
    by_round = {g["round_idx"]: g for g in stats.grouped(samples, ("round_idx",))}
    round_figures = []
    for r in rounds:
        entry = {k: r.get(k) for k in ("idx", "label", "kind", "model", "users", "status",
                                       "requests_planned", "requests_done")}
        entry["figures"] = {k: v for k, v in by_round.get(r["idx"], {}).items()
                            if k != "round_idx"} or stats.figures([])
        round_figures.append(entry)
    return {
        "run": {k: run.get(k) for k in (
            "id", "name", "mode", "status", "tenant", "created_by", "created_at", "finished_at",
            "cost_cap_usd", "estimate_usd", "spent_usd", "requests_planned", "requests_done",
            "settings", "error_message")},
        "overall": stats.figures(samples),
        "groups": groups,
        "rounds": round_figures,
        "lesson_steps": lesson_steps(rounds, samples),
        "grades": stats.grade_table(),
        "definitions": DEFINITIONS,
        "charts": charts(groups),
    }


def lesson_steps(rounds: Sequence[Mapping[str, Any]],
                 samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per lesson round and step: waits and when students were done, since the round began."""
    starts = {r["idx"]: r.get("started_at") for r in rounds if r.get("kind") == "lesson"}
    out = []
    for key, rows in _by(samples, ("round_idx", "seq")).items():
        round_idx, seq = key
        began = starts.get(round_idx)
        if round_idx not in starts or began is None:
            continue
        ended = [s for s in rows if s["status"] in ("ok", "error")]
        waits = [s["queue_wait_ms"] / 1000 for s in ended if s.get("queue_wait_ms") is not None]
        done = [s["finished_at"] - began for s in ended if s.get("finished_at") is not None]
        out.append({
            "round_idx": round_idx, "step": seq, "model": rows[0]["model"], "calls": len(ended),
            "p50_wait_s": _r(stats.percentile(waits, 50)),
            "p95_wait_s": _r(stats.percentile(waits, 95)),
            "p95_done_s": _r(stats.percentile(done, 95)),
            "success_rate": stats.figures(rows)["success_rate"],
        })
    return out


def _by(samples: Sequence[Mapping[str, Any]],
        keys: Sequence[str]) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    out: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for s in samples:
        out.setdefault(tuple(s.get(k) for k in keys), []).append(s)
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def charts(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Plotly figures (as JSON dicts) of latency, success, queue wait against users."""
    import plotly.graph_objects as go
    import plotly.io as pio

    series: dict[str, list[Mapping[str, Any]]] = {}
    for g in groups:
        series.setdefault(f"{g['model']}", []).append(g)

    def figure(title: str, ytitle: str, lines: list[tuple[str, str, str]],
               yrange: list[float] | None = None) -> dict[str, Any]:
        fig = go.Figure()
        for i, (name, rows) in enumerate(series.items()):
            rows = sorted(rows, key=lambda g: g["users"])
            colour = COLOURS[i % len(COLOURS)]
            for label, path, dash in lines:
                fig.add_trace(go.Scatter(
                    x=[g["users"] for g in rows], y=[_pick(g, path) for g in rows],
                    mode="lines+markers", name=f"{name} {label}".strip(),
                    line={"color": colour, "dash": dash},
                ))
        fig.update_layout(title=title, xaxis_title="concurrent users", yaxis_title=ytitle,
                          height=360, margin={"l": 50, "r": 20, "t": 50, "b": 40},
                          legend={"orientation": "h", "y": -0.25})
        if yrange:
            fig.update_yaxes(range=yrange)
        return dict(json.loads(pio.to_json(fig)))

    return {
        "latency": figure("Latency against users", "ms",
                          [("p50", "latency_ms.p50", "dot"), ("p95", "latency_ms.p95", "solid")]),
        "success": figure("Success rate against users", "%",
                          [("", "success_pct", "solid")], [0, 105]),
        "queue_wait": figure("Queue wait against users", "ms",
                             [("p95", "queue_wait_ms.p95", "solid")]),
        "throughput": figure("Throughput against users", "successful calls / s",
                             [("", "throughput_rps", "solid")]),
    }


def _pick(group: Mapping[str, Any], path: str) -> Any:
    if path == "success_pct":
        return round(group["success_rate"] * 100, 2)
    value: Any = group
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# -- HTML ----------------------------------------------------------------------------------------


def _cell(value: Any) -> Safe:
    if value is None:
        return escape("—")
    if isinstance(value, float):
        return escape(f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.3g}")
    return escape(value)


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def report_html(report: Mapping[str, Any]) -> str:
    """One HTML page (plotly's script inline, so it opens offline)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    run = report["run"]
    head = ["provider", "model", "users", "requests", "success", "grade", "mean ms", "p50 ms",
            "p95 ms", "p99 ms", "TTFT p50", "TTFT p95", "wait p50", "wait p95", "calls/s",
            "errors"]
    rows = []
    for g in report["groups"]:
        lat, ttft, wait = g["latency_ms"], g["ttft_ms"], g["queue_wait_ms"]
        errors = ", ".join(f"{k}: {v}" for k, v in g["errors_by_code"].items())
        cells = [g["provider"], g["model"], g["users"], g["requests"],
                 f"{g['success_rate']:.1%}", g["grade"], lat["mean"], lat["p50"], lat["p95"],
                 lat["p99"], ttft["p50"], ttft["p95"], wait["p50"], wait["p95"],
                 g["throughput_rps"], errors or None]
        rows.append(html("<tr>{}</tr>", join(
            html('<td class="grade-{}">{}</td>', g["grade"], _cell(c)) if i == 5 and g["grade"]
            else html("<td>{}</td>", _cell(c)) for i, c in enumerate(cells)
        )))
    steps: Safe | str = ""
    if report["lesson_steps"]:
        step_rows = join(
            html("<tr>{}</tr>", join(html("<td>{}</td>", _cell(s[k])) for k in (
                "round_idx", "step", "model", "calls", "p50_wait_s", "p95_wait_s", "p95_done_s")))
            for s in report["lesson_steps"])
        steps = html("<h2>Lesson steps</h2><table><tr><th>round</th><th>step</th><th>model</th>"
                     "<th>calls</th><th>wait p50 (s)</th><th>wait p95 (s)</th>"
                     "<th>done p95 (s since start)</th></tr>{}</table>", step_rows)
    grades = join(html('<tr><td class="grade-{0}">{0}</td><td>{1}</td></tr>', g["grade"], g["rule"])
                  for g in report["grades"])
    definitions = join(html("<dt>{}</dt><dd>{}</dd>", k, v)
                       for k, v in report["definitions"].items())
    figures = []
    for i, fig in enumerate(report["charts"].values()):
        # plotly's own HTML of a figure built here (its text is escaped by plotly.js).
        figures.append(Safe(pio.to_html(go.Figure(fig), full_html=False,
                                        include_plotlyjs=(i == 0), default_width="100%")))
    settings = run.get("settings") or {}
    facts = [
        ("Mode", run.get("mode")), ("Status", run.get("status")),
        ("School", run.get("tenant")), ("Started by", run.get("created_by")),
        ("Started", _when(run.get("created_at"))), ("Ended", _when(run.get("finished_at"))),
        ("Calls", f"{run.get('requests_done')} of {run.get('requests_planned')}"),
        ("Spent", f"${(run.get('spent_usd') or 0):.4f}"
         + (f" (cap ${run['cost_cap_usd']:.2f})" if run.get("cost_cap_usd") else "")),
        ("Mock latency", f"TTFT {settings.get('mock_ttft_ms')} ms, "
         f"{settings.get('mock_tokens_per_second')} tokens/s" if settings else None),
    ]
    fact_rows = join(html("<tr><th>{}</th><td>{}</td></tr>", k, _cell(v)) for k, v in facts if v)
    return str(html(_PAGE, title=f"Load test {run.get('id')}: {run.get('name')}",
                    facts=fact_rows, head=join(html("<th>{}</th>", h) for h in head),
                    rows=join(rows), steps=steps, figures=join(figures), grades=grades,
                    definitions=definitions))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }}
.grade-A {{ background: #c8f0c8; }} .grade-B {{ background: #e2f5c4; }}
.grade-C {{ background: #fff2b3; }} .grade-D {{ background: #ffd9b3; }}
.grade-F {{ background: #f7b8b8; }}
dt {{ font-weight: bold; }} dd {{ margin: 0 0 .5em 1em; }}
</style></head><body>
<h1>{title}</h1>
<table>{facts}</table>
<h2>Per provider, model and number of users</h2>
<table><tr>{head}</tr>{rows}</table>
{steps}
<h2>Charts</h2>
{figures}
<h2>Grades</h2>
<table><tr><th>grade</th><th>when</th></tr>{grades}</table>
<h2>Definitions</h2><dl>{definitions}</dl>
</body></html>
"""
