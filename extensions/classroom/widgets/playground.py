"""``Playground()``: one prompt, run N times with the parameters you set, side by side.

See what temperature and top_p really do: run the same prompt several times
at once and compare the answers, with the words that differ from the first
answer highlighted, and each answer's tokens, latency and cost. "Show code"
gives the exact call in Python (the provider's official SDK), JavaScript and
cURL; "Export" saves the run as JSON, Markdown or CSV::

    pg = Playground(model="mock/lorem", prompt="Write a haiku about the sea.")
    pg.apply_preset("creative")
    results = pg.run(iterations=3)   # waits; also what the Run button does
    print(pg.code("python"))
    pg.export("csv")
"""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as w

from gateway.safehtml import html

from .._catalog import ALL_PARAMETERS, PRESETS, format_cost, parameters_for, provider_of
from .._client import GatewayClient
from .._codegen import LANGUAGES, code_for
from .._explainer import explain
from .._export import EXTENSIONS, FORMATS, export_run, highlight_differences, similarity
from .._mock import substitute
from ._base import ClassroomWidget, stat_line
from ._common import render_markdown

MAX_ITERATIONS = 10


class Playground(ClassroomWidget):
    """Run one prompt several times with chosen parameters and compare the answers."""

    title = "Playground"
    feature = "playground"

    def __init__(
        self,
        model: str | None = None,
        prompt: str = "",
        system: str = "",
        *,
        iterations: int = 3,
        client: GatewayClient | None = None,
    ) -> None:
        self._initial = (model, prompt, system, iterations)
        self.results: list[dict[str, Any]] = []
        self.run_record: dict[str, Any] | None = None
        self.last_export: Path | None = None
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, prompt, system, iterations = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.system_prompt = w.Textarea(value=system, description="System", rows=2,
                                        placeholder="Optional instructions for the model",
                                        layout=w.Layout(width="100%"))
        self.user_prompt = w.Textarea(value=prompt, description="Prompt", rows=3,
                                      placeholder="What should the model do?",
                                      layout=w.Layout(width="100%"))
        self.preset_buttons = w.ToggleButtons(
            options=[(name.capitalize(), name) for name in PRESETS], value=None,
            description="Preset", tooltips=[
                "Low temperature: focused, repeatable answers",
                "The usual middle ground",
                "High temperature: varied, surprising answers",
            ],
        )
        self.sliders: dict[str, w.Widget] = {}
        for p in ALL_PARAMETERS:
            cls = w.IntSlider if p.name in ("top_k", "max_tokens") else w.FloatSlider
            slider = cls(value=p.default, min=p.minimum, max=p.maximum, step=p.step,
                         description=p.label, continuous_update=False,
                         style={"description_width": "80px"}, layout=w.Layout(width="340px"))
            slider.tooltip = p.help
            self.sliders[p.name] = slider
        self.iterations_slider = w.IntSlider(value=iterations, min=1, max=MAX_ITERATIONS,
                                             description="Iterations",
                                             style={"description_width": "80px"})
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.results_box = w.GridBox(layout=w.Layout(
            grid_template_columns="repeat(auto-fit, minmax(260px, 1fr))", grid_gap="8px",
            width="100%"))
        self.summary = w.HTML()
        self.language = w.ToggleButtons(options=[("Python", "python"), ("JavaScript",
                                        "javascript"), ("cURL", "curl")], value="python")
        self.code_button = w.Button(description="Show code", icon="code")
        self.code_view = w.HTML()
        self.export_format = w.Dropdown(options=[("JSON", "json"), ("Markdown", "markdown"),
                                                 ("CSV", "csv")], value="json",
                                        layout=w.Layout(width="120px"))
        self.export_button = w.Button(description="Export", icon="download")
        self.export_link = w.HTML()

        self.model_picker.observe(lambda _: self._show_sliders(), names="value")
        self.preset_buttons.observe(self._preset_picked, names="value")
        self.run_button.on_click(lambda _: self._start(self._work(), "Running…"))
        self.code_button.on_click(lambda _: self._show_code())
        self.language.observe(lambda _: self._show_code(), names="value")
        self.export_button.on_click(lambda _: self._export_from_button())
        self._refresh_models(prefer=model)
        return [
            self.model_picker, self.system_prompt, self.user_prompt, self.preset_buttons,
            w.GridBox(list(self.sliders.values()) + [self.iterations_slider],
                      layout=w.Layout(grid_template_columns="repeat(auto-fit, 350px)")),
            w.HBox([self.run_button]),
            self.summary, self.results_box,
            w.HBox([self.language, self.code_button]), self.code_view,
            w.HBox([self.export_format, self.export_button]), self.export_link,
        ]

    def _controls(self) -> list[w.Widget]:
        return [self.run_button, self.model_picker, self.preset_buttons, self.iterations_slider]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("chat"), prefer)
        self._show_sliders()

    # -- parameters ----------------------------------------------------------------------

    @property
    def model(self) -> str | None:
        return str(self.model_picker.value) if self.model_picker.value else None

    @model.setter
    def model(self, name: str) -> None:
        if name not in self.model_picker.options:
            self.model_picker.options = (*self.model_picker.options, name)
        self.model_picker.value = name

    @property
    def provider(self) -> str:
        model = self.model or ""
        return self.catalog.get(model).provider if model in self.catalog else provider_of(model)

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters sent with each call: the sliders this provider has."""
        return {p.name: self.sliders[p.name].value for p in parameters_for(self.provider)}

    def set(self, **values: Any) -> None:
        """Set sliders from code: ``pg.set(temperature=0.2, max_tokens=50)``."""
        for name, value in values.items():
            self.sliders[name].value = value

    def apply_preset(self, name: str) -> None:
        """precise, balanced or creative: sets temperature, top_p and top_k."""
        self.preset_buttons.value = name

    def _preset_picked(self, change: dict[str, Any]) -> None:
        for name, value in PRESETS.get(change["new"] or "", {}).items():
            slider = self.sliders[name]
            slider.value = min(max(value, slider.min), slider.max)

    def _show_sliders(self) -> None:
        offered = parameters_for(self.provider)
        names = {p.name for p in offered}
        for p in offered:
            if p.name == "temperature":
                self.sliders["temperature"].max = p.maximum
        for name, slider in self.sliders.items():
            slider.layout.display = None if name in names else "none"

    # -- running -------------------------------------------------------------------------

    def run(self, iterations: int | None = None, timeout: float | None = None
            ) -> list[dict[str, Any]]:
        """Run the prompt ``iterations`` times at once; wait and return the results."""
        self._require_enabled()
        if iterations is not None:
            self.iterations_slider.value = iterations
        self._run_and_wait(self._work(), "Running…", timeout)
        return self.results

    def _work(self) -> Any:
        model = substitute(self.model or "", "chat")
        system, prompt = str(self.system_prompt.value), str(self.user_prompt.value)
        params = self.parameters
        count = int(self.iterations_slider.value)

        def one(index: int) -> dict[str, Any]:
            started = time.perf_counter()
            messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
                {"role": "user", "content": prompt}]
            try:
                reply = self.client.chat(messages, model, **params)
            except Exception as exc:
                return {"iteration": index, "text": "", "error": explain(exc).message,
                        "error_code": getattr(exc, "code", "widget_error"),
                        "latency_s": round(time.perf_counter() - started, 3), "_exc": exc}
            usage = reply.usage
            cost = self.catalog.cost(reply.model, usage.prompt_tokens,
                                     usage.completion_tokens) if usage else None
            return {
                "iteration": index, "text": reply.text,
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "latency_s": round(reply.latency, 3), "cost_usd": cost,
                "finish_reason": reply.finish_reason, "error": None,
            }

        def work() -> None:
            if not prompt.strip():
                raise ValueError("Write a prompt first, then press Run.")
            if not model:
                raise ValueError("Pick a model first.")
            self.results_box.children = []
            self.summary.value = ""
            with ThreadPoolExecutor(max_workers=count, thread_name_prefix="playground") as pool:
                results = list(pool.map(one, range(1, count + 1)))
            errors = [r.pop("_exc") for r in results if "_exc" in r]
            self.results = results
            self.run_record = {
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": model, "provider": provider_of(model), "system": system,
                "prompt": prompt, "parameters": params, "iterations": count,
                "results": results,
            }
            self._render_results()
            if errors and len(errors) == len(results):
                raise errors[0]
            if errors:
                self.error_box.show(errors[0])

        return work

    def _render_results(self) -> None:
        texts = [r["text"] for r in self.results if not r.get("error")]
        reference = texts[0] if texts else ""
        cards = []
        for r in self.results:
            if r.get("error"):
                body = html('<div class="classroom-error">{}</div>', r["error"])
                stats = stat_line(f"{r['latency_s']:.2f} s", r.get("error_code", ""))
            else:
                first = r["text"] == reference and r is self._first_ok()
                body = render_markdown(r["text"]) if first else html(
                    '<div style="white-space:pre-wrap">{}</div>',
                    highlight_differences(reference, r["text"]))
                tokens = f"{r['prompt_tokens']} + {r['completion_tokens']} tokens"
                stats = stat_line(tokens, f"{r['latency_s']:.2f} s", format_cost(r["cost_usd"]),
                                  "cut short" if r.get("finish_reason") == "length" else "")
            cards.append(w.HTML(html(
                '<div class="classroom-result" style="border:1px solid #ccc;border-radius:4px;'
                'padding:6px 8px;height:100%"><b>#{}</b>{}{}</div>', r["iteration"], body, stats)))
        self.results_box.children = cards
        ok = [r for r in self.results if not r.get("error")]
        if ok:
            alike = similarity(texts)
            cost = [r["cost_usd"] for r in ok]
            total = None if any(c is None for c in cost) else sum(cost)
            self.summary.value = stat_line(
                f"{len(ok)} of {len(self.results)} answers",
                f"{alike:.0%} alike (words in a highlight differ from #1)",
                f"total {format_cost(total)}",
                f"slowest {max(r['latency_s'] for r in ok):.2f} s",
            )

    def _first_ok(self) -> dict[str, Any] | None:
        return next((r for r in self.results if not r.get("error")), None)

    # -- code and export -----------------------------------------------------------------

    def code(self, language: str = "python") -> str:
        """The call this playground makes, as ``python``, ``javascript`` or ``curl``."""
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        return code_for(language, substitute(self.model or "mock/echo", "chat"),
                        str(self.system_prompt.value), str(self.user_prompt.value),
                        self.parameters)

    def _show_code(self) -> None:
        self.code_view.value = html(
            '<pre class="classroom-code" style="background:var(--jp-layout-color2,#f5f5f5);'
            'padding:8px;overflow:auto">{}</pre>', self.code(self.language.value))

    def export(self, fmt: str = "json") -> str:
        """The last run as ``json``, ``markdown`` or ``csv`` text."""
        if self.run_record is None:
            raise ValueError("Nothing to export yet: press Run first.")
        return export_run(self.run_record, fmt)

    def save(self, fmt: str = "json", directory: str | Path = ".") -> Path:
        """Write the last run to a file next to the notebook; returns its path."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = Path(directory) / f"playground-{stamp}.{EXTENSIONS[fmt]}"
        path.write_text(self.export(fmt), encoding="utf-8")
        self.last_export = path
        return path

    def _export_from_button(self) -> None:
        fmt = str(self.export_format.value)
        try:
            path = self.save(fmt)
        except (ValueError, OSError) as error:
            self.error_box.show(str(error))
            return
        data = base64.b64encode(path.read_bytes()).decode()
        self.export_link.value = html(
            'Saved <code>{name}</code> next to this notebook · '
            '<a download="{name}" href="data:{mime};base64,{data}">download</a>',
            name=path.name, mime=FORMATS[fmt], data=data)
