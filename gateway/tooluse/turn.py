"""One chat turn with an MCP connection: at most one round of tool calls (the seed's design).

    1. list the connection's tools (MCP ``tools/list``);
    2. ask the model, offering them (an ordinary chat call);
    3. if it asks for tools: call each (MCP ``tools/call``, with a timeout), one history
       row per call with its duration and status; a failure (timeout, server down, bad
       arguments, the tool's own error) becomes the result the model reads, in words;
    4. send the results back once (``tool_choice: "none"``: the model answers in words);
    5. return the answer with every call and result.

Both model calls go through :class:`gateway.services.chat.ChatService` exactly as a call from
an SDK does (identity, policy, key pool, metering, history), so a tool turn is never a
way around a budget or an allow-list.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.auth import Identity
from gateway.errors import ClassroomError, InvalidRequest, McpTimeout, ServerNotAllowed
from gateway.services.chat import ChatService
from gateway.tooluse.client import McpClient, McpTool
from gateway.tooluse.store import Connection, ConnectionStore

PASSED_ON = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "seed",
             "parallel_tool_calls")


class ToolTurns:
    def __init__(self, chat: ChatService, store: ConnectionStore, client: McpClient) -> None:
        self.chat = chat
        self.store = store
        self.client = client

    async def tools(self, identity: Identity, connection_id: int) -> tuple[Connection,
                                                                            list[McpTool]]:
        connection = await self.store.get(identity, connection_id, with_secrets=True)
        allow = await self.store.allow_list(identity.tenant)
        return connection, await self.client.list_tools(connection, allow)

    async def call(self, identity: Identity, connection: Connection, tool: str,
                   arguments: Any, *, run_id: int | None = None,
                   known: list[McpTool] | None = None) -> dict[str, Any]:
        """Call one tool and record it; never raises for the tool's or server's failure."""
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        started = time.time()
        call_id = await self.store.start_call(identity, connection, tool, text, run_id)
        status, result, error = "ok", None, None
        try:
            parsed = json.loads(text or "{}")
            if not isinstance(parsed, dict):
                raise ValueError("not an object")
        except ValueError:
            status, error = "error", (f"The arguments for {tool} are not a JSON object: "
                                      f"{text[:200]}")
            parsed = None
        if parsed is not None and known is not None and tool not in {t.name for t in known}:
            status, error = "error", f"The server '{connection.name}' has no tool '{tool}'."
        if status == "ok":
            try:
                allow = await self.store.allow_list(identity.tenant)
                outcome = await self.client.call_tool(connection, allow, tool, parsed or {})
                result = outcome.text
                if outcome.is_error:
                    status, error = "error", outcome.text or f"{tool} failed."
            except McpTimeout as failure:
                status, error = "timeout", failure.message
            except ServerNotAllowed as failure:
                status, error = "refused", failure.message
            except ClassroomError as failure:
                status, error = "error", failure.message
        values = await self.store.finish_call(call_id, status=status, result=result,
                                              error=error, started_at=started)
        return {"id": call_id, "tool": tool, "arguments": text, "status": status,
                "result": result, "error": error, "duration_ms": values["duration_ms"],
                "connection": connection.name}

    async def turn(self, identity: Identity, connection_id: int, body: dict[str, Any], *,
                   source: str) -> dict[str, Any]:
        messages = body.get("messages")
        if messages is None and isinstance(body.get("prompt"), str):
            messages = [{"role": "user", "content": body["prompt"]}]
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("Send 'prompt' (text) or 'messages' (a chat).",
                                 param="messages")
        connection, tools = await self.tools(identity, connection_id)
        offered = [t.as_openai() for t in tools]
        request: dict[str, Any] = {"model": body.get("model"), "messages": list(messages)}
        request.update({k: body[k] for k in PASSED_ON if k in body})
        if offered:
            request["tools"] = offered
        first = await self._ask(identity, request, source)
        message = (first["response"].get("choices") or [{}])[0].get("message") or {}
        asked = message.get("tool_calls") or []
        calls: list[dict[str, Any]] = []
        runs = [first["run_id"]]
        if not asked:
            return self._answer(first, calls, runs, connection, tools)
        for call in asked:
            function = call.get("function") or {}
            done = await self.call(identity, connection, str(function.get("name")),
                                   function.get("arguments") or "{}", run_id=first["run_id"],
                                   known=tools)
            done["call_id"] = call.get("id")
            calls.append(done)
        follow = dict(request)
        follow["messages"] = [*request["messages"],
                              {"role": "assistant", "content": message.get("content"),
                               "tool_calls": asked},
                              *({"role": "tool", "tool_call_id": c["call_id"],
                                 "content": c["result"] if c["status"] == "ok"
                                 else f"Error: {c['error']}"} for c in calls)]
        follow["tool_choice"] = "none"  # one round: now the model answers in words
        second = await self._ask(identity, follow, source)
        runs.append(second["run_id"])
        return self._answer(second, calls, runs, connection, tools)

    async def _ask(self, identity: Identity, request: dict[str, Any],
                   source: str) -> dict[str, Any]:
        raw = json.dumps(request).encode()
        prepared = await self.chat.prepare(identity, raw, source=source)
        result = await self.chat.complete(prepared)
        return {"response": result.response, "run_id": prepared.run_id, "text": result.text}

    @staticmethod
    def _answer(asked: dict[str, Any], calls: list[dict[str, Any]], runs: list[int],
                connection: Connection, tools: list[McpTool]) -> dict[str, Any]:
        response = asked["response"]
        choice = (response.get("choices") or [{}])[0]
        return {"model": response.get("model"), "connection": connection.public(),
                "tools": [t.name for t in tools],
                "answer": (choice.get("message") or {}).get("content") or "",
                "finish_reason": choice.get("finish_reason"), "tool_calls": calls,
                "runs": runs, "usage": response.get("usage")}
