"""``MyUsage()``: how much of your quota and budget you have used, and your recent calls.

Bars show today's requests and tokens against your daily quota and this
month's cost against your budget (when the school sets them); the table
lists your most recent calls with their model, tokens, cost and outcome.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from gateway.safehtml import html, join

from .._catalog import format_cost
from .._client import GatewayClient
from ._base import ClassroomWidget, stat_line
from ._charts import Chart


class MyUsage(ClassroomWidget):
    """Your own usage, today and this month, against your limits."""

    title = "My usage"
    feature = "usage"

    def __init__(self, *, client: GatewayClient | None = None, load: bool = True) -> None:
        self.usage: dict[str, Any] | None = None
        super().__init__(client=client)
        if load and self.disabled_reason is None:
            self._start(self._work(), "Loading your usage…")

    def _build(self) -> list[w.Widget]:
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.summary = w.HTML()
        self.chart = Chart(height=300)
        self.recent = w.HTML()
        self.refresh_button.on_click(lambda _: self._start(self._work(), "Loading your usage…"))
        return [self.refresh_button, self.summary, self.chart.widget, self.recent]

    def _controls(self) -> list[w.Widget]:
        return [self.refresh_button]

    def refresh(self, timeout: float | None = None) -> dict[str, Any]:
        """Load the numbers again; wait and return them."""
        self._require_enabled()
        self._run_and_wait(self._work(), "Loading your usage…", timeout)
        assert self.usage is not None
        return self.usage

    def _work(self) -> Any:
        def work() -> None:
            self.usage = self.client.my_usage()
            self._render()

        return work

    def bars(self) -> list[dict[str, Any]]:
        """One entry per bar: label, used, limit (None: no limit) and share of the limit."""
        if self.usage is None:
            return []
        u, limits = self.usage, self.usage["limits"]
        rows = [
            ("Requests today", u["today"]["requests"], limits.get("requests_per_day"), "{:.0f}"),
            ("Tokens today", u["today"]["tokens"], limits.get("tokens_per_day"), "{:.0f}"),
            ("Cost this month (USD)", u["month"]["cost_usd"], limits.get("usd_per_month"),
             "{:.4f}"),
        ]
        return [
            {"label": label, "used": used, "limit": limit, "format": fmt,
             "share": (used / limit if limit else (1.0 if limit == 0 else None))}
            for label, used, limit, fmt in rows
        ]

    def _render(self) -> None:
        import plotly.graph_objects as go

        assert self.usage is not None
        bars = self.bars()
        labels = [b["label"] for b in bars]
        shares = [100 * b["share"] if b["share"] is not None else 0 for b in bars]
        text = [
            (b["format"].format(b["used"]) + " of "
             + (b["format"].format(b["limit"]) if b["limit"] is not None else "no limit"))
            for b in bars
        ]
        colours = ["#d62728" if s >= 90 else "#ff7f0e" if s >= 70 else "#2ca02c" for s in shares]
        self.chart.draw(
            [go.Bar(x=shares, y=labels, orientation="h", text=text, textposition="auto",
                    marker={"color": colours}, name="used")],
            title={"text": "Used, as % of your limit", "font": {"size": 13}},
            xaxis={"range": [0, max(100, *shares)], "title": "% of the limit"},
            showlegend=False,
        )
        today, month = self.usage["today"], self.usage["month"]
        source = ("from the gateway's usage report" if self.usage["source"] == "/api/usage/me"
                  else "added up from your history")
        self.summary.value = stat_line(
            f"Today: {today['requests']} requests, {today['tokens']} tokens, "
            f"{format_cost(today['cost_usd'])}",
            f"This month: {month['requests']} requests, {month['tokens']} tokens, "
            f"{format_cost(month['cost_usd'])}",
            source,
        )
        rows = join(
            html("<tr>{}</tr>", join(html("<td>{}</td>", c) for c in (
                (r.get("queued_at") or "")[:19].replace("T", " "), r.get("model") or "",
                r.get("source") or "",
                f"{r.get('prompt_tokens') or 0} + {r.get('completion_tokens') or 0}",
                format_cost(r.get("cost_usd")), r.get("status") or "",
                r.get("error_code") or "",
            )))
            for r in self.usage["recent"][:10]
        )
        self.recent.value = html(
            '<b>Recent calls</b><table class="classroom-recent"><tr><th>when (UTC)</th>'
            "<th>model</th><th>from</th><th>tokens</th><th>cost</th><th>status</th>"
            "<th>error</th></tr>{}</table>", rows,
        ) if rows else stat_line("No calls yet.")
