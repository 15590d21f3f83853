"""OpenAI chat format ⇄ Anthropic Messages format: requests, responses, streams, usage.

Used in both directions: ``/v1/chat/completions`` with a ``claude-*`` model goes
OpenAI → Anthropic → OpenAI; ``/anthropic/v1/messages`` with any other model
goes Anthropic → OpenAI → Anthropic. Plain functions on dicts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from gateway.edge.schemas import ChatCompletionRequest, content_text
from gateway.errors import InvalidToolSchema
from gateway.pricing import TokenUsage
from gateway.providers.base import StreamEvent, usage_to_openai

DEFAULT_MAX_TOKENS = 4096
STOP_TO_OPENAI = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "pause_turn": "stop", "refusal": "content_filter",
}
STOP_TO_ANTHROPIC = {v: k for k, v in STOP_TO_OPENAI.items() if k != "pause_turn"}
STOP_TO_ANTHROPIC["stop"] = "end_turn"


# -- usage ------------------------------------------------------------------------------


def usage_from_anthropic(usage: dict[str, Any] | None, *, estimated: bool = False) -> TokenUsage:
    """Anthropic's ``input_tokens`` exclude cache reads and writes; ours include them."""
    usage = usage or {}
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    return TokenUsage(
        prompt_tokens=int(usage.get("input_tokens") or 0) + read + written,
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=read,
        cache_write_tokens=written,
        estimated=estimated,
    )


def usage_to_anthropic(usage: TokenUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


# -- OpenAI → Anthropic (for claude-* models on the OpenAI face) -----------------------------


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                            "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                blocks.append(_image_block(url))
    return blocks


def request_to_anthropic(request: ChatCompletionRequest, vendor_model: str,
                         default_max: int | None) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:  # Anthropic wants roles to alternate
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for message in request.messages:
        extra = message.model_extra or {}
        if message.role in ("system", "developer"):
            system.append(content_text(message.content))
        elif message.role == "user":
            add("user", _blocks(message.content))
        elif message.role == "assistant":
            blocks = _blocks(message.content)
            for call in extra.get("tool_calls") or []:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {"raw": function.get("arguments")}
                blocks.append({"type": "tool_use", "id": call.get("id"),
                               "name": function.get("name"), "input": arguments})
            add("assistant", blocks)
        elif message.role in ("tool", "function"):
            add("user", [{"type": "tool_result", "tool_use_id": extra.get("tool_call_id"),
                          "content": content_text(message.content)}])
    body: dict[str, Any] = {
        "model": vendor_model,
        "messages": messages,
        "max_tokens": request.output_limit or min(default_max or DEFAULT_MAX_TOKENS,
                                                  DEFAULT_MAX_TOKENS),
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.user:
        body["metadata"] = {"user_id": request.user}
    extra = request.model_extra or {}
    tools = extra.get("tools")
    if tools:
        body["tools"] = [
            {"name": t["function"]["name"], "description": t["function"].get("description", ""),
             "input_schema": t["function"].get("parameters") or {"type": "object",
                                                                 "properties": {}}}
            for t in tools if t.get("type") == "function"
        ]
    choice = extra.get("tool_choice")
    if choice == "required":
        body["tool_choice"] = {"type": "any"}
    elif choice in ("auto", "none"):
        body["tool_choice"] = {"type": choice}
    elif isinstance(choice, dict) and choice.get("function"):
        body["tool_choice"] = {"type": "tool", "name": choice["function"].get("name")}
    if extra.get("parallel_tool_calls") is False and tools and choice != "none":
        body["tool_choice"] = {**body.get("tool_choice", {"type": "auto"}),
                               "disable_parallel_tool_use": True}
    if request.stream:
        body["stream"] = True
    return body


def response_to_openai(message: dict[str, Any], model: str) -> dict[str, Any]:
    blocks = message.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    tool_calls = [
        {"id": b.get("id"), "type": "function",
         "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input") or {})}}
        for b in message.get("content") or [] if b.get("type") == "tool_use"
    ]
    reply: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    usage = usage_from_anthropic(message.get("usage"))
    return {
        "id": "chatcmpl-" + str(message.get("id", uuid.uuid4().hex)).removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model", model),
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": STOP_TO_OPENAI.get(message.get("stop_reason") or "",
                                                         "stop")}],
        "usage": usage_to_openai(usage),
    }


async def stream_to_openai(
    events: AsyncIterator[StreamEvent], model: str
) -> AsyncIterator[StreamEvent]:
    """Anthropic stream events → OpenAI chunks (usage arrives with ``message_delta``)."""
    ident = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    async for piece in events:
        event = piece.payload
        kind = event.get("type")
        if kind == "message_start":
            yield StreamEvent(chunk({"role": "assistant", "content": ""}), usage=piece.usage)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = tools.setdefault(event.get("index", 0), len(tools))
                yield StreamEvent(chunk({"tool_calls": [{
                    "index": index, "id": block.get("id"), "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""}}]}))
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield StreamEvent(chunk({"content": delta.get("text", "")}), text=piece.text)
            elif delta.get("type") == "input_json_delta":
                index = tools.get(event.get("index", 0), 0)
                yield StreamEvent(chunk({"tool_calls": [{
                    "index": index, "function": {"arguments": delta.get("partial_json", "")}}]}))
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason") or "end_turn"
            yield StreamEvent(chunk({}, STOP_TO_OPENAI.get(stop, "stop")))
            if piece.usage is not None:
                usage_chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                               "model": model, "choices": [],
                               "usage": usage_to_openai(piece.usage)}
                yield StreamEvent(usage_chunk, usage=piece.usage, final=piece.final)


# -- Anthropic → OpenAI (for other models on the Anthropic face) ------------------------------


def _openai_parts(content: Any) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """Anthropic content → (OpenAI content, tool calls, tool results)."""
    if isinstance(content, str):
        return content, [], []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            source = block.get("source") or {}
            url = (f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
                   if source.get("type") == "base64" else source.get("url", ""))
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"), "arguments": json.dumps(block.get("input") or {})}})
        elif kind == "tool_result":
            inner = block.get("content")
            text = inner if isinstance(inner, str) else " ".join(
                b.get("text") or "" for b in inner or [] if b.get("type") == "text")
            if block.get("is_error"):
                text = "Error: " + text
            results.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                            "content": text})
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts), calls, results
    return parts, calls, results


def request_from_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages body as an OpenAI chat body (validated by the caller)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n\n".join(
            b.get("text") or "" for b in system if isinstance(b, dict))
        messages.append({"role": "system", "content": text})
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            messages.append(message)  # let validation name it
            continue
        content, calls, results = _openai_parts(message.get("content"))
        messages.extend(results)
        if content or calls or not results:
            entry: dict[str, Any] = {"role": message.get("role"), "content": content or None}
            if calls:
                entry["tool_calls"] = calls
            messages.append(entry)
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                           "max_tokens": body.get("max_tokens")}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"),
                         ("stop", "stop_sequences"), ("stream", "stream")):
        if body.get(theirs) is not None:
            out[ours] = body[theirs]
    if body.get("tools"):
        server = [t.get("name") for t in body["tools"] if t.get("type") not in (None, "custom")]
        if server:
            raise InvalidToolSchema(
                f"The tool '{server[0]}' is one of Anthropic's own server tools; only claude-* "
                "models can run it. Describe it with a name and an input_schema instead.",
                param="tools")
        out["tools"] = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("input_schema") or {}}} for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = str(choice.get("type"))
        out["tool_choice"] = {"any": "required", "auto": "auto", "none": "none"}.get(
            kind, {"type": "function", "function": {"name": choice.get("name")}})
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    return out


def response_from_openai(
    completion: dict[str, Any], usage: TokenUsage, model: str
) -> dict[str, Any]:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": arguments})
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_TO_ANTHROPIC.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_to_anthropic(usage),
    }


async def stream_from_openai(chunks: AsyncIterator[StreamEvent], model: str,
                             prompt_estimate: int) -> AsyncIterator[StreamEvent]:
    """OpenAI chunks → Anthropic events, ``message_start`` first and ``message_stop`` last.

    The text is block 0; each tool call becomes a ``tool_use`` block of its own, opened
    when its id and name arrive (closing the block before it) and fed its arguments as
    ``input_json_delta`` pieces, as Claude streams them."""
    start = {"type": "message_start", "message": {
        "id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": prompt_estimate, "output_tokens": 0}}}
    yield StreamEvent(start, event="message_start")
    yield StreamEvent({"type": "content_block_start", "index": 0,
                 "content_block": {"type": "text", "text": ""}}, event="content_block_start")
    finish = "stop"
    usage: TokenUsage | None = None
    final = False
    current = 0  # the open block
    blocks: dict[int, int] = {}  # OpenAI tool call index → Anthropic block index
    async for piece in chunks:
        for choice in piece.payload.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text and current == 0:
                yield StreamEvent({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": text}},
                            event="content_block_delta", text=text)
            for call in delta.get("tool_calls") or ():
                index = call.get("index", 0)
                function = call.get("function") or {}
                if index not in blocks:
                    yield StreamEvent({"type": "content_block_stop", "index": current},
                                event="content_block_stop")
                    current = blocks[index] = len(blocks) + 1
                    yield StreamEvent({"type": "content_block_start", "index": current,
                                 "content_block": {"type": "tool_use",
                                                   "id": call.get("id") or f"toolu_{index}",
                                                   "name": function.get("name"), "input": {}}},
                                event="content_block_start")
                if function.get("arguments"):
                    yield StreamEvent({"type": "content_block_delta", "index": blocks[index],
                                 "delta": {"type": "input_json_delta",
                                           "partial_json": function["arguments"]}},
                                event="content_block_delta")
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        if piece.usage is not None:
            usage, final = piece.usage, piece.final
    yield StreamEvent({"type": "content_block_stop", "index": current}, event="content_block_stop")
    if blocks:
        finish = "tool_calls"
    delta_usage = usage_to_anthropic(usage) if usage else {"output_tokens": 0}
    yield StreamEvent({"type": "message_delta",
                 "delta": {"stop_reason": STOP_TO_ANTHROPIC.get(finish, "end_turn"),
                           "stop_sequence": None},
                 "usage": delta_usage}, event="message_delta", usage=usage, final=final)
    yield StreamEvent({"type": "message_stop"}, event="message_stop")
