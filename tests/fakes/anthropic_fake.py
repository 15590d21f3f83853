"""Anthropic's Messages API: ``x-api-key`` or ``Authorization: Bearer`` plus a required
``anthropic-version``; SSE events ``message_start`` … ``content_block_delta`` …
``message_delta`` (usage) … ``message_stop``; Anthropic's error shape; ``request-id``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.common import (
    Fake,
    directives,
    planned_tool_calls,
    request_id,
    sse_event,
    strip_directives,
    tool_id,
    words,
)

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 429: "rate_limit_error", 500: "api_error",
         529: "overloaded_error", 503: "api_error"}


def error_shape(status: int, kind: str, message: str, **_: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"type": TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id()}


def api_key(request: Request) -> str | None:
    if request.headers.get("x-api-key"):
        return request.headers["x-api-key"]
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


fake = Fake("anthropic", error_shape, api_key)


def _text(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
    return " ".join(texts), sum(1 for b in content or [] if b.get("type") == "image")


def _tool_results(messages: list[dict[str, Any]]) -> list[str]:
    """The ``tool_result`` blocks of the last message, when it is a user turn of them."""
    if not messages or messages[-1].get("role") != "user":
        return []
    content = messages[-1].get("content")
    results = []
    for block in content if isinstance(content, list) else []:
        if block.get("type") == "tool_result":
            inner = block.get("content")
            text = inner if isinstance(inner, str) else _text(inner)[0]
            results.append(("error: " if block.get("is_error") else "") + text)
    return results


def _tool_calls(body: dict[str, Any], said: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "none":
        return []
    if choice.get("type") == "any" and "tools" not in said:
        said = {**said, "tool": said.get("tool", {})}
    elif choice.get("type") == "tool":
        said = {**said, "tool": {"name": choice.get("name")}}
    offered = [(t.get("name", ""), t.get("input_schema")) for t in body.get("tools") or []
               if t.get("input_schema") is not None]
    planned = planned_tool_calls(said, offered)
    if choice.get("disable_parallel_tool_use"):
        planned = planned[:1]
    return [{"type": "tool_use", "id": tool_id("toolu_"), "name": name, "input": arguments}
            for name, arguments in planned]


@fake.route("/v1/messages", ["POST"])
async def messages(request: Request) -> Response:
    if not request.headers.get("anthropic-version"):
        return fake.fail(400, "invalid", "anthropic-version: header is required")
    body = await request.json()
    for field in ("model", "messages", "max_tokens"):
        if field not in body:
            return fake.fail(400, "invalid", f"{field}: Field required")
    last, images, prompt_words = "", 0, 0
    for message in body["messages"]:
        text, seen = _text(message.get("content"))
        images += seen
        prompt_words += len(words(text))
        if message.get("role") == "user":
            last = text
    system = body.get("system")
    if "[[too-long]]" in last:
        return fake.fail(400, "invalid", "prompt is too long: 250000 tokens > 200000 maximum")
    said = directives(last)
    reply = f"Fake Claude reply: {strip_directives(last)}"
    results = _tool_results(body["messages"])
    if results:
        reply = "Fake Claude reply: tool said: " + " | ".join(results)
    tools = [] if results else _tool_calls(body, said)
    if system:
        reply += f" [system: {system if isinstance(system, str) else 'blocks'}]"
    if images:
        reply += f" (saw {images} image{'s' if images > 1 else ''})"
    if "words" in said:
        reply = " ".join(f"w{i}" for i in range(int(said["words"]["n"])))
    pieces = words(reply)[:int(body["max_tokens"])]
    numbers = said.get("usage", {})
    prompt = int(numbers.get("prompt", prompt_words + 9))
    cached, written = int(numbers.get("cached", 0)), int(numbers.get("write", 0))
    usage = {"input_tokens": prompt - cached - written, "cache_creation_input_tokens": written,
             "cache_read_input_tokens": cached,
             "output_tokens": int(numbers.get("completion", len(pieces)))}
    stop = "max_tokens" if len(pieces) < len(words(reply)) else "end_turn"
    if tools:  # Claude says a word before it calls, as it usually does
        pieces, stop = ["Calling", "a", "tool."], "tool_use"
    ident = "msg_" + request_id("")[:24]
    if not body.get("stream"):
        return JSONResponse({
            "id": ident, "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": " ".join(pieces)}, *tools],
            "stop_reason": stop,
            "stop_sequence": None, "usage": usage,
        }, headers={"request-id": request_id()})
    delay = float(said.get("words", {}).get("delay", 0))

    async def events() -> AsyncIterator[bytes]:
        start_usage = {**usage, "output_tokens": 1}
        yield sse_event({"type": "message_start", "message": {
            "id": ident, "type": "message", "role": "assistant", "model": body["model"],
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
            "message_start")
        yield sse_event({"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}, "content_block_start")
        yield sse_event({"type": "ping"}, "ping")
        for index, word in enumerate(pieces):
            if delay:
                await asyncio.sleep(delay)
            yield sse_event({"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": word if index == 0 else " " + word}},
                "content_block_delta")
        yield sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        for index, call in enumerate(tools, start=1):
            yield sse_event({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}},
                "content_block_start")
            arguments = json.dumps(call["input"])
            for start in range(0, len(arguments), 7):
                yield sse_event({"type": "content_block_delta", "index": index, "delta": {
                    "type": "input_json_delta", "partial_json": arguments[start:start + 7]}},
                    "content_block_delta")
            yield sse_event({"type": "content_block_stop", "index": index},
                            "content_block_stop")
        yield sse_event({"type": "message_delta", "delta": {"stop_reason": stop,
                                                            "stop_sequence": None},
                         "usage": {"output_tokens": usage["output_tokens"]}}, "message_delta")
        yield sse_event({"type": "message_stop"}, "message_stop")

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"request-id": request_id(), "x-started": str(time.time())})


app = fake.app()
