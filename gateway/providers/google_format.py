"""OpenAI chat format ⇄ Gemini ``generateContent`` format: requests, responses, streams,
usage, and safety blocks in words.

The REST API speaks camelCase; snake_case keys are accepted too, as Google's own
endpoints do. Plain functions on dicts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from gateway.errors import ContentBlocked
from gateway.pricing import Usage
from gateway.providers.base import Piece, usage_to_openai
from gateway.schemas import ChatCompletionRequest, content_text

FINISH_TO_OPENAI = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                    "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
                    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
                    "IMAGE_SAFETY": "content_filter", "LANGUAGE": "content_filter"}
FINISH_FROM_OPENAI = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY",
                      "tool_calls": "STOP"}
BLOCK_WORDS = {
    "SAFETY": "it was judged unsafe", "BLOCKLIST": "it contains blocked words",
    "PROHIBITED_CONTENT": "it touches prohibited content", "OTHER": "of Google's usage policy",
    "IMAGE_SAFETY": "the image was judged unsafe", "RECITATION": "it would recite protected text",
    "SPII": "it would reveal personal information",
}


def g(d: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    return d.get(camel, d.get(snake, default))


# -- usage and safety -------------------------------------------------------------------------


def usage_from_gemini(meta: dict[str, Any] | None, *, estimated: bool = False) -> Usage:
    """Gemini counts thoughts apart from candidates; ours fold them into completion tokens."""
    meta = meta or {}
    thoughts = int(g(meta, "thoughtsTokenCount", "thoughts_token_count", 0) or 0)
    return Usage(
        prompt_tokens=int(g(meta, "promptTokenCount", "prompt_token_count", 0) or 0)
        + int(g(meta, "toolUsePromptTokenCount", "tool_use_prompt_token_count", 0) or 0),
        completion_tokens=int(g(meta, "candidatesTokenCount", "candidates_token_count", 0) or 0)
        + thoughts,
        cached_tokens=int(g(meta, "cachedContentTokenCount", "cached_content_token_count", 0) or 0),
        reasoning_tokens=thoughts,
        estimated=estimated,
    )


def usage_to_gemini(usage: Usage) -> dict[str, Any]:
    meta = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _flagged(ratings: list[dict[str, Any]] | None) -> str:
    bad = [
        f"{str(r.get('category', '')).removeprefix('HARM_CATEGORY_').lower().replace('_', ' ')}"
        f" ({str(r.get('probability', '')).lower()})"
        for r in ratings or [] if r.get("blocked") or r.get("probability") in ("HIGH", "MEDIUM")
    ]
    return f" Flagged: {', '.join(bad)}." if bad else ""


def block_reason(response: dict[str, Any]) -> str | None:
    """Why Google blocked a prompt or an answer, in words; ``None`` when it did not."""
    feedback = g(response, "promptFeedback", "prompt_feedback") or {}
    reason = g(feedback, "blockReason", "block_reason")
    if reason:
        words = BLOCK_WORDS.get(reason, reason.lower())
        return (f"Google blocked the prompt ({reason}): {words}."
                + _flagged(g(feedback, "safetyRatings", "safety_ratings")))
    for candidate in response.get("candidates") or []:
        finish = g(candidate, "finishReason", "finish_reason")
        if finish in BLOCK_WORDS and finish != "OTHER":
            return (f"Google stopped the answer ({finish}): {BLOCK_WORDS[finish]}."
                    + _flagged(g(candidate, "safetyRatings", "safety_ratings")))
    return None


def parts_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = response.get("candidates") or [{}]
    return list((candidates[0].get("content") or {}).get("parts") or [])


def response_text(response: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in parts_of(response)
                   if isinstance(p.get("text"), str) and not p.get("thought"))


def images_of(response: dict[str, Any]) -> list[tuple[str, str]]:
    """(mime type, base64 data) of the inline images of an answer."""
    found = []
    for part in parts_of(response):
        inline = g(part, "inlineData", "inline_data")
        if inline and str(g(inline, "mimeType", "mime_type", "")).startswith("image/"):
            found.append((g(inline, "mimeType", "mime_type"), inline.get("data", "")))
    return found


# -- OpenAI → Gemini (gemini-* models on the OpenAI face) ---------------------------------------


def _gemini_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            parts.append({"text": part.get("text", "")})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url.startswith("data:"):
                header, _, data = url.partition(",")
                parts.append({"inlineData": {"mimeType": header[5:].split(";")[0], "data": data}})
            elif isinstance(url, str):
                parts.append({"fileData": {"fileUri": url, "mimeType": "image/jpeg"}})
    return parts


def request_to_gemini(request: ChatCompletionRequest) -> dict[str, Any]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name
    for message in request.messages:
        extra = message.model_extra or {}
        if message.role in ("system", "developer"):
            system.append(content_text(message.content))
            continue
        if message.role in ("tool", "function"):
            name = names.get(extra.get("tool_call_id") or "", message.name or "tool")
            parts: list[dict[str, Any]] = [{"functionResponse": {
                "name": name, "response": {"result": content_text(message.content)}}}]
            role = "user"
        else:
            parts = _gemini_parts(message.content)
            role = "model" if message.role == "assistant" else "user"
            for call in extra.get("tool_calls") or []:
                function = call.get("function") or {}
                names[call.get("id", "")] = function.get("name", "")
                try:
                    args = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    args = {}
                parts.append({"functionCall": {"name": function.get("name"), "args": args}})
        if parts:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    for ours, theirs in ((request.temperature, "temperature"), (request.top_p, "topP"),
                         (request.output_limit, "maxOutputTokens"), (request.seed, "seed"),
                         (request.n, "candidateCount")):
        if ours is not None:
            config[theirs] = ours
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    extra = request.model_extra or {}
    response_format = extra.get("response_format") or {}
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object",
                                                                              "json_schema"):
        config["responseMimeType"] = "application/json"
    if config:
        body["generationConfig"] = config
    tools = [t["function"] for t in extra.get("tools") or [] if t.get("type") == "function"]
    if tools:
        body["tools"] = [{"functionDeclarations": [
            {k: v for k, v in t.items() if k in ("name", "description", "parameters")}
            for t in tools]}]
    return body


def response_to_openai(response: dict[str, Any], model: str) -> dict[str, Any]:
    """A Gemini answer as a ``chat.completion``; a blocked one raises ``content_blocked``."""
    reason = block_reason(response)
    text = response_text(response)
    if reason and not text:
        raise ContentBlocked(reason)
    calls = [
        {"id": "call_" + uuid.uuid4().hex[:24], "type": "function", "function": {
            "name": g(p, "functionCall", "function_call")["name"],
            "arguments": json.dumps(g(p, "functionCall", "function_call").get("args") or {})}}
        for p in parts_of(response) if g(p, "functionCall", "function_call")
    ]
    finish = g((response.get("candidates") or [{}])[0], "finishReason", "finish_reason") or "STOP"
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_from_gemini(g(response, "usageMetadata", "usage_metadata"))
    return {
        "id": "chatcmpl-" + str(response.get("responseId") or uuid.uuid4().hex[:24]),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.get("modelVersion") or model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if calls else FINISH_TO_OPENAI.get(finish,
                                                                                      "stop")}],
        "usage": usage_to_openai(usage),
    }


async def stream_to_openai(chunks: AsyncIterator[Piece], model: str) -> AsyncIterator[Piece]:
    ident = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    usage: Usage | None = None
    final = False
    started = False
    async for piece in chunks:
        if piece.blocked and not piece.text and not started:
            raise ContentBlocked(piece.blocked)  # before the first byte: an HTTP error
        if not started:
            started = True
            yield Piece(chunk({"role": "assistant", "content": ""}))
        if piece.text:
            yield Piece(chunk({"content": piece.text}), text=piece.text)
        finish = g((piece.payload.get("candidates") or [{}])[0], "finishReason", "finish_reason")
        if piece.usage is not None:
            usage, final = piece.usage, piece.final
        if finish:
            yield Piece(chunk({}, FINISH_TO_OPENAI.get(finish, "stop")))
    if usage is not None:
        yield Piece({"id": ident, "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [], "usage": usage_to_openai(usage)},
                    usage=usage, final=final)


# -- Gemini → OpenAI (other models on the Google face) ------------------------------------------


def request_from_gemini(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = g(body, "systemInstruction", "system_instruction")
    if isinstance(system, dict):
        messages.append({"role": "system", "content": " ".join(
            p.get("text") or "" for p in system.get("parts") or [] if isinstance(p, dict))})
    elif isinstance(system, str):
        messages.append({"role": "system", "content": system})
    contents = body.get("contents")
    if isinstance(contents, str):
        contents = [{"role": "user", "parts": [{"text": contents}]}]
    for content in contents or []:
        parts: list[dict[str, Any]] = []
        for part in content.get("parts") or []:
            inline = g(part, "inlineData", "inline_data")
            if isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif inline:
                mime = g(inline, "mimeType", "mime_type", "image/png")
                parts.append({"type": "image_url",
                              "image_url": {"url": f"data:{mime};base64,{inline.get('data', '')}"}})
        role = "assistant" if content.get("role") == "model" else "user"
        if all(p["type"] == "text" for p in parts):
            messages.append({"role": role, "content": "".join(p["text"] for p in parts)})
        else:
            messages.append({"role": role, "content": parts})
    config = g(body, "generationConfig", "generation_config") or {}
    out: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    for theirs, snake, ours in (("temperature", "temperature", "temperature"),
                                ("topP", "top_p", "top_p"),
                                ("maxOutputTokens", "max_output_tokens", "max_tokens"),
                                ("stopSequences", "stop_sequences", "stop"),
                                ("seed", "seed", "seed")):
        value = g(config, theirs, snake)
        if value is not None:
            out[ours] = value
    return out


def response_from_openai(completion: dict[str, Any], usage: Usage, model: str) -> dict[str, Any]:
    choice = (completion.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": FINISH_FROM_OPENAI.get(
                            choice.get("finish_reason") or "stop", "STOP"),
                        "index": 0}],
        "usageMetadata": usage_to_gemini(usage),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:24],
    }


async def stream_from_openai(chunks: AsyncIterator[Piece], model: str) -> AsyncIterator[Piece]:
    response_id = uuid.uuid4().hex[:24]
    finish = "STOP"
    usage: Usage | None = None
    final = False
    async for piece in chunks:
        for choice in piece.payload.get("choices") or ():
            if choice.get("finish_reason"):
                finish = FINISH_FROM_OPENAI.get(choice["finish_reason"], "STOP")
        if piece.usage is not None:
            usage, final = piece.usage, piece.final
        if piece.text:
            yield Piece({"candidates": [{"content": {"role": "model", "parts": [
                {"text": piece.text}]}, "index": 0}], "modelVersion": model,
                "responseId": response_id}, text=piece.text)
    last: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                            "finishReason": finish, "index": 0}],
                            "modelVersion": model, "responseId": response_id}
    if usage is not None:
        last["usageMetadata"] = usage_to_gemini(usage)
    yield Piece(last, usage=usage, final=final)
