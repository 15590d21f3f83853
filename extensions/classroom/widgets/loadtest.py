"""``LoadTestWidget()``: run a load test from a notebook and watch it (administrators).

Paste or edit a plan (YAML; ``classroom loadtest example`` prints a commented
one), pick the mode (real mode needs a cost cap; *Estimate* shows the worst
case first), and *Start*: one progress bar per round with its running figures
(success, p95 latency, p95 queue wait), *Cancel* to stop it (what ran is kept),
and the report's charts — latency and success rate against the number of
users — when it ends. *Past runs* opens earlier reports.

Every action also has a method for lessons and tests: :meth:`~LoadTestWidget.start`,
:meth:`~LoadTestWidget.wait`, :meth:`~LoadTestWidget.cancel`, :meth:`~LoadTestWidget.show`.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from gateway.safehtml import Safe, escape, html, join

from .._client import GatewayClient
from .._exceptions import GatewayError
from ..loadtest import ENDED, LoadTestAPI
from ._charts import Chart

STARTER_PLAN = """\
name: quick check
mode: mock
defaults:
  requests_per_user: 3
  think_time_s: [0.2, 1.0]
rounds:
  - model: mock/lorem
    users: [1, 5, 10]
"""


def _figures_text(figures: dict[str, Any] | None, status: str) -> Safe:
    f = figures or {}
    if not f.get("requests"):
        return escape(status)
    lat = (f.get("latency_ms") or {}).get("p95")
    wait = (f.get("queue_wait_ms") or {}).get("p95")
    parts: list[Any] = [status, f"ok {f['success_rate']:.0%}"]
    if lat is not None:
        parts.append(f"p95 {lat:.0f} ms")
    if wait is not None:
        parts.append(f"wait p95 {wait:.0f} ms")
    if f.get("grade"):
        parts.append(html("grade <b>{}</b>", f["grade"]))
    return join(parts, " · ")


class LoadTestWidget:
    """Start a load-test plan, follow its rounds, cancel it, and chart its report."""

    def __init__(self, *, client: GatewayClient | None = None,
                 poll_interval: float = 0.5) -> None:
        if client is None:
            from .. import client as default_client

            client = default_client
        self.api = LoadTestAPI(client.with_source("widget"))
        self.poll_interval = poll_interval
        self.run_id: int | None = None
        self.status: dict[str, Any] | None = None
        self.report: dict[str, Any] | None = None
        self.last_error: BaseException | None = None
        self._done = threading.Event()
        self._done.set()
        self._stop = threading.Event()

        self.plan = w.Textarea(value=STARTER_PLAN, layout=w.Layout(width="100%", height="180px"))
        self.mode = w.ToggleButtons(options=["mock", "real"], value="mock",
                                    description="Mode")
        self.cost_cap = w.BoundedFloatText(value=1.0, min=0.01, max=10_000, step=0.5,
                                           description="Cap $", layout=w.Layout(width="180px"))
        self.estimate_button = w.Button(description="Estimate", icon="calculator")
        self.start_button = w.Button(description="Start", icon="play", button_style="primary")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.past = w.Dropdown(description="Past runs", options=[], layout=w.Layout(width="420px"))
        self.open_button = w.Button(description="Open", icon="folder-open")
        self.message = w.HTML()
        self.error = w.HTML()
        self.rounds = w.VBox()
        self.latency_chart = Chart(height=340)
        self.success_chart = Chart(height=300)
        self.estimate_button.on_click(lambda _: self._guard(self.estimate))
        self.start_button.on_click(lambda _: self._guard(self.start))
        self.cancel_button.on_click(lambda _: self._guard(self.cancel))
        self.open_button.on_click(lambda _: self._guard(self._open_selected))
        self.widget = w.VBox([
            w.HTML("<b>Load test</b> (administrators)"), self.plan,
            w.HBox([self.mode, self.cost_cap]),
            w.HBox([self.estimate_button, self.start_button, self.cancel_button]),
            w.HBox([self.past, self.open_button]),
            self.message, self.rounds, self.latency_chart.widget, self.success_chart.widget,
            self.error,
        ], layout=w.Layout(width="100%", max_width="1100px"))
        self._guard(self.refresh_runs)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        state = self.status["status"] if self.status else "idle"
        return f"<LoadTestWidget run={self.run_id} {state}>"

    def _guard(self, action: Any) -> None:
        """A button's action: errors are shown, not raised into the void."""
        try:
            self.error.value = ""
            action()
        except GatewayError as error:
            self.last_error = error
            self.error.value = html('<span style="color:#b00">{}</span>', str(error))

    # -- actions ---------------------------------------------------------------------------------

    def _cap(self) -> float | None:
        return float(self.cost_cap.value) if self.mode.value == "real" else None

    def estimate(self) -> dict[str, Any]:
        """Check the plan and show what it may cost at most; nothing starts."""
        checked = self.api.start(self.plan.value, mode=self.mode.value, cost_cap_usd=self._cap(),
                                 dry_run=True)
        e = checked["estimate"]
        self.message.value = html("{} calls in {} rounds; worst case ${:.4f}. {}",
                                  e["requests"], e["rounds"], e["worst_case_usd"], e["note"])
        return checked

    def start(self, plan: str | None = None, *, mode: str | None = None,
              cost_cap_usd: float | None = None) -> int:
        """Start a plan (the text box's by default) and follow it in the background."""
        if not self._done.is_set():
            raise GatewayError("A load test is already being followed here; cancel it first.",
                               code="conflict")
        if plan is not None:
            self.plan.value = plan
        if mode is not None:
            self.mode.value = mode
        if cost_cap_usd is not None:
            self.cost_cap.value = cost_cap_usd
        started = self.api.start(self.plan.value, mode=self.mode.value, cost_cap_usd=self._cap())
        self.follow(int(started["id"]))
        return int(started["id"])

    def follow(self, run_id: int) -> None:
        """Follow a run (started here or elsewhere) until it ends."""
        self.run_id, self.report = run_id, None
        self._done.clear()
        self._stop.clear()
        self.cancel_button.disabled = False
        self.start_button.disabled = True
        threading.Thread(target=self._watch, args=(run_id,), daemon=True,
                         name=f"loadtest-{run_id}").start()

    def _watch(self, run_id: int) -> None:
        try:
            while not self._stop.is_set():
                status = self.api.status(run_id)
                self._render_status(status)
                if status["status"] in ENDED:
                    self.show(run_id)
                    break
                self._stop.wait(self.poll_interval)  # polling interval; the status decides
        except GatewayError as error:
            self.last_error = error
            self.error.value = html('<span style="color:#b00">{}</span>', str(error))
        finally:
            self.cancel_button.disabled = True
            self.start_button.disabled = False
            self._done.set()

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait until the followed run has ended and its report is shown; its last status."""
        self._done.wait(timeout)
        return self.status

    def cancel(self) -> dict[str, Any] | None:
        """Cancel the followed run; what ran is kept and reported."""
        if self.run_id is None or self._done.is_set():
            return self.status
        status = self.api.cancel(self.run_id)
        self._render_status(status)
        return status

    def refresh_runs(self) -> list[dict[str, Any]]:
        runs = self.api.runs()
        self.past.options = [(f"#{r['id']} {r['name']} — {r['status']}", r["id"]) for r in runs]
        return runs

    def _open_selected(self) -> None:
        if self.past.value is not None:
            self.show(int(self.past.value))

    # -- rendering ---------------------------------------------------------------------------------

    def _render_status(self, status: dict[str, Any]) -> None:
        self.status = status
        bars = list(self.rounds.children)
        for i, r in enumerate(status["rounds"]):
            if i >= len(bars):
                bar = w.IntProgress(min=0, max=max(1, r["requests_planned"]),
                                    layout=w.Layout(width="260px"))
                bars.append(w.HBox([w.Label(r["label"], layout=w.Layout(width="220px")), bar,
                                    w.HTML()]))
            label, bar, text = bars[i].children
            bar.value = r["requests_done"]
            bar.bar_style = {"done": "success", "running": "info", "cancelled": "warning",
                             "stopped_at_cap": "warning"}.get(r["status"], "")
            text.value = _figures_text(r.get("figures"), r["status"])
        self.rounds.children = tuple(bars)
        self.message.value = html("Load test {}: <b>{}</b>, {} of {} calls, ${:.4f}",
                                  status["id"], status["status"], status["requests_done"],
                                  status["requests_planned"], status.get("spent_usd") or 0)

    def show(self, run_id: int) -> dict[str, Any]:
        """Load a run's report and draw its charts."""
        import plotly.graph_objects as go

        report = self.api.report(run_id)
        if self.status is None or self.status.get("id") != run_id:
            self._render_status(self.api.status(run_id))
        for chart, name in ((self.latency_chart, "latency"), (self.success_chart, "success")):
            figure = report["charts"][name]
            layout = dict(figure.get("layout", {}))
            layout.pop("template", None)
            traces = [go.Scatter(**{k: v for k, v in t.items() if k != "type"})
                      for t in figure.get("data", [])]
            chart.draw(traces, **layout)
        self.report = report
        return report
