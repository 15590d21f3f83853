"""``Compare()``: one prompt to several models at once, answers side by side.

Every model gets the same messages at the same moment; each column shows the
answer with its latency, tokens and cost, so speed, length and price can be
compared at a glance::

    cmp = Compare(models=["mock/echo", "mock/lorem"], prompt="Explain tokens.")
    cmp.run()        # waits; returns one result per model
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ipywidgets as w

from gateway.safehtml import html

from .._catalog import format_cost
from .._client import GatewayClient
from .._explainer import explain
from .._mock import mock_enabled
from ._base import ClassroomWidget, stat_line
from ._common import render_markdown

MAX_MODELS = 6


class Compare(ClassroomWidget):
    """Send one prompt to several models at once and compare their answers."""

    title = "Compare"
    feature = "compare"

    def __init__(
        self,
        models: Sequence[str] | None = None,
        prompt: str = "",
        system: str = "",
        *,
        max_tokens: int = 300,
        client: GatewayClient | None = None,
    ) -> None:
        self._initial = (list(models or []), prompt, system, max_tokens)
        self.results: list[dict[str, Any]] = []
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        models, prompt, system, max_tokens = self._initial
        self.model_picker = w.SelectMultiple(description="Models", rows=5,
                                             layout=w.Layout(width="auto", min_width="360px"))
        self.system_prompt = w.Textarea(value=system, description="System", rows=2,
                                        layout=w.Layout(width="100%"))
        self.user_prompt = w.Textarea(value=prompt, description="Prompt", rows=3,
                                      layout=w.Layout(width="100%"),
                                      placeholder="One prompt for every model")
        self.max_tokens = w.IntSlider(value=max_tokens, min=1, max=4096,
                                      description="max_tokens", continuous_update=False)
        self.run_button = w.Button(description="Compare", button_style="primary",
                                   icon="columns")
        self.columns = w.GridBox(layout=w.Layout(
            grid_template_columns="repeat(auto-fit, minmax(240px, 1fr))", grid_gap="8px",
            width="100%"))
        self.run_button.on_click(lambda _: self._start(self._work(), "Asking every model…"))
        self._refresh_models(models)
        return [
            w.HTML('<div style="opacity:.7;font-size:90%">Hold Ctrl (⌘ on a Mac) to pick '
                   "several models.</div>"),
            self.model_picker, self.system_prompt, self.user_prompt, self.max_tokens,
            self.run_button, self.columns,
        ]

    def _controls(self) -> list[w.Widget]:
        return [self.run_button, self.model_picker]

    def _refresh_models(self, prefer: Sequence[str] | None = None) -> None:
        options = self.model_options("chat")
        wanted = list(prefer or self.model_picker.value or [])
        if not mock_enabled():
            options += [m for m in wanted if m not in options]
        self.model_picker.options = options
        chosen = [m for m in wanted if m in options] or options[:2]
        self.model_picker.value = tuple(chosen)

    @property
    def models(self) -> list[str]:
        return list(self.model_picker.value)

    @models.setter
    def models(self, names: Sequence[str]) -> None:
        self._refresh_models(names)

    def run(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Ask every chosen model; wait and return one result per model."""
        self._require_enabled()
        self._run_and_wait(self._work(), "Asking every model…", timeout)
        return self.results

    def _work(self) -> Any:
        models = self.models[:MAX_MODELS]
        system, prompt = str(self.system_prompt.value), str(self.user_prompt.value)
        max_tokens = int(self.max_tokens.value)
        messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
            {"role": "user", "content": prompt}]

        def one(model: str) -> dict[str, Any]:
            try:
                reply = self.client.chat(messages, model, max_tokens=max_tokens)
            except Exception as exc:
                return {"model": model, "text": "", "error": explain(exc).message,
                        "error_code": getattr(exc, "code", "widget_error"), "_exc": exc}
            usage = reply.usage
            return {
                "model": model, "text": reply.text, "latency_s": round(reply.latency, 3),
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "cost_usd": self.catalog.cost(model, usage.prompt_tokens,
                                              usage.completion_tokens) if usage else None,
                "finish_reason": reply.finish_reason, "error": None,
            }

        def work() -> None:
            if not prompt.strip():
                raise ValueError("Write a prompt first, then press Compare.")
            if not models:
                raise ValueError("Pick at least one model (Ctrl-click to pick several).")
            self.columns.children = []
            with ThreadPoolExecutor(max_workers=len(models), thread_name_prefix="compare") as pool:
                results = list(pool.map(one, models))
            errors = [r.pop("_exc") for r in results if "_exc" in r]
            self.results = results
            self._render()
            if errors and len(errors) == len(results):
                raise errors[0]
            if errors:
                self.error_box.show(errors[0])

        return work

    def _render(self) -> None:
        ok = [r for r in self.results if not r.get("error")]
        # One fastest, even when two latencies round to the same value.
        fastest = min(ok, key=lambda r: r["latency_s"]) if len(ok) > 1 else None
        cards = []
        for r in self.results:
            if r.get("error"):
                body = html('<div class="classroom-error">{}</div>', r["error"])
                stats = stat_line(r["error_code"])
            else:
                body = render_markdown(r["text"])
                stats = stat_line(
                    f"{r['latency_s']:.2f} s" + (" (fastest)" if r is fastest else ""),
                    f"{r['prompt_tokens']} + {r['completion_tokens']} tokens",
                    format_cost(r["cost_usd"]),
                )
            cards.append(w.HTML(html(
                '<div class="classroom-result" style="border:1px solid #ccc;border-radius:4px;'
                'padding:6px 8px;height:100%"><b>{}</b>{}{}</div>', r["model"], body, stats)))
        self.columns.children = cards
