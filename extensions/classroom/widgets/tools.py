"""``Tools()``: pick a model and an MCP connection, see its tools, ask, and watch the
calls and their results.

The gateway does the work (``POST /api/mcp-connections/{id}/chat``): it offers the
connection's tools to the model, runs at most one round of the calls the model asks
for, sends the results back once and returns the answer with every call. From code::

    tools = Tools(model="mock/echo")          # the classroom's own MCP server
    turn = tools.ask("calculator: 6 * 7")     # waits; the gateway's answer as a dict
    turn["tool_calls"][0]["result"]           # what the tool said
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w

from gateway.safehtml import html, join

from .._client import GatewayClient
from .._mock import substitute
from ._base import ClassroomWidget, stat_line

STATUS_COLOURS = {"ok": "#2a7d2a", "error": "#b42318", "timeout": "#b54708",
                  "refused": "#b42318", "running": "#666"}


class Tools(ClassroomWidget):
    """Chat with a model that may call an MCP server's tools (one round per turn)."""

    title = "Tools and MCP"
    feature = "chat"

    def __init__(self, model: str | None = None, connection: int | str = 0, *,
                 client: GatewayClient | None = None) -> None:
        self._initial = (model, connection)
        self.connections: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] = []
        self.last_turn: dict[str, Any] | None = None
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, _connection = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="300px"))
        self.connection_picker = w.Dropdown(description="Server", options=[],
                                            layout=w.Layout(width="auto", min_width="300px"))
        self.tools_list = w.HTML()
        self.prompt = w.Textarea(description="Ask", rows=3, layout=w.Layout(width="100%"),
                                 placeholder="e.g. calculator: 6 * 7, or: what is the current "
                                 "time in Asia/Seoul?")
        self.ask_button = w.Button(description="Ask", button_style="primary", icon="wrench")
        self.calls_view = w.HTML()
        self.answer_view = w.HTML()
        self.connection_picker.observe(lambda change: self._start(self._tools_work(),
                                                                  "Listing tools…"), "value")
        self.ask_button.on_click(lambda _: self._start(
            self._ask_work(str(self.prompt.value)), "The model and the tools are working…"))
        self._refresh_models(prefer=model)
        self._start(self._connections_work(), "Loading your MCP connections…")
        return [w.HBox([self.model_picker, self.connection_picker]), self.tools_list,
                self.prompt, self.ask_button, self.calls_view, self.answer_view]

    def _controls(self) -> list[w.Widget]:
        return [self.ask_button, self.model_picker, self.connection_picker]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("chat"), prefer)

    @property
    def model(self) -> str:
        return substitute(str(self.model_picker.value or "mock/echo"), "chat")

    @property
    def connection_id(self) -> int:
        return int(self.connection_picker.value or 0)

    # -- from code ----------------------------------------------------------------------------

    def ask(self, prompt: str, timeout: float | None = 120) -> dict[str, Any]:
        """Ask with the chosen model and connection; wait; the gateway's answer."""
        self._require_enabled()
        self.prompt.value = prompt
        self._run_and_wait(self._ask_work(prompt), "The model and the tools are working…",
                           timeout)
        assert self.last_turn is not None
        return self.last_turn

    def list_tools(self, timeout: float | None = 60) -> list[dict[str, Any]]:
        """The chosen connection's tools (name, description, input_schema)."""
        self._require_enabled()
        self._run_and_wait(self._tools_work(), "Listing tools…", timeout)
        return self.tools

    # -- work ---------------------------------------------------------------------------------

    def _connections_work(self) -> Any:
        wanted = self._initial[1]

        def work() -> None:
            self.connections = self.client.get("/api/mcp-connections")["items"]
            options = [(f"{c['name']} ({c['url']})", c["id"]) for c in self.connections]
            chosen = next((c["id"] for c in self.connections
                           if wanted in (c["id"], c["name"])), options[0][1] if options else None)
            self.connection_picker.options = options
            self.connection_picker.value = chosen
            self._tools_work()()

        return work

    def _tools_work(self) -> Any:
        connection = self.connection_id

        def work() -> None:
            found = self.client.get(f"/api/mcp-connections/{connection}/tools")
            self.tools = found["tools"]
            rows = join(html("<li><code>{}</code> {}</li>", t["name"], t["description"])
                        for t in self.tools)
            self.tools_list.value = html(
                '<details open><summary>{} tool(s) on {}</summary><ul>{}</ul></details>',
                len(self.tools), found["connection"]["name"], rows)

        return work

    def _ask_work(self, prompt: str) -> Any:
        model, connection = self.model, self.connection_id

        def work() -> None:
            if not prompt.strip():
                raise ValueError("Type a question first.")
            turn = self.client.post(f"/api/mcp-connections/{connection}/chat",
                                    json={"model": model, "prompt": prompt})
            self.last_turn = turn
            self.calls_view.value = render_calls(turn["tool_calls"])
            self.answer_view.value = html(
                '<div class="classroom-answer" style="white-space:pre-wrap;padding:6px 8px;'
                'border-left:3px solid #1f77b4">{}</div>{}', turn["answer"] or "(no text)",
                stat_line(str(turn.get("model") or model),
                          f"{len(turn['tool_calls'])} tool call(s)",
                          f"{len(turn['runs'])} model call(s)"))

        return work


def render_calls(calls: list[dict[str, Any]]) -> Any:
    """The tool calls of a turn as HTML: every text in it escaped."""
    if not calls:
        return html('<div style="opacity:.7">The model called no tool.</div>')
    rows = []
    for call in calls:
        try:
            arguments = json.dumps(json.loads(call["arguments"] or "{}"), ensure_ascii=False)
        except ValueError:
            arguments = str(call["arguments"])
        outcome = call["result"] if call["status"] == "ok" else call["error"]
        rows.append(html(
            '<tr><td><code>{}</code></td><td><code>{}</code></td>'
            '<td style="color:{}">{}</td><td>{} ms</td><td style="white-space:pre-wrap">{}</td>'
            "</tr>", call["tool"], arguments, STATUS_COLOURS.get(call["status"], "#666"),
            call["status"], call["duration_ms"], outcome or ""))
    return html('<table class="classroom-tool-calls"><tr><th>tool</th><th>arguments</th>'
                "<th>status</th><th>took</th><th>result</th></tr>{}</table>", join(rows))
