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

from gateway.edge.schemas import ChatCompletionRequest, content_text
from gateway.errors import ContentBlocked
from gateway.pricing import TokenUsage
from gateway.providers.base import StreamEvent, usage_to_openai
from gateway.services import tools

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


def usage_from_gemini(meta: dict[str, Any] | None, *, estimated: bool = False) -> TokenUsage:
    """Gemini counts thoughts apart from candidates; ours fold them into completion tokens."""
    meta = meta or {}
    thoughts = int(g(meta, "thoughtsTokenCount", "thoughts_token_count", 0) or 0)
    return TokenUsage(
        prompt_tokens=int(g(meta, "promptTokenCount", "prompt_token_count", 0) or 0)
        + int(g(meta, "toolUsePromptTokenCount", "tool_use_prompt_token_count", 0) or 0),
        completion_tokens=int(g(meta, "candidatesTokenCount", "candidates_token_count", 0) or 0)
        + thoughts,
        cached_tokens=int(g(meta, "cachedContentTokenCount", "cached_content_token_count", 0) or 0),
        reasoning_tokens=thoughts,
        estimated=estimated,
    )


def usage_to_gemini(usage: TokenUsage) -> dict[str, Any]:
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


def _result_object(text: str) -> dict[str, Any]:
    """A tool's result as Gemini's ``functionResponse.response`` (an object): the result's
    own JSON object when it is one, else ``{"result": text}``."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


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
            call_id = extra.get("tool_call_id") or ""
            name = names.get(call_id, message.name or "tool")
            answer: dict[str, Any] = {"name": name,
                                      "response": _result_object(content_text(message.content))}
            if call_id.startswith("gemini-"):  # Gemini's own call id, given back
                answer["id"] = call_id.removeprefix("gemini-")
            last = contents[-1] if contents else None
            # All the answers to one turn's calls go back in one content, as Gemini wants.
            if last and last["role"] == "user" and all("functionResponse" in p
                                                       for p in last["parts"]):
                last["parts"].append({"functionResponse": answer})
                continue
            parts: list[dict[str, Any]] = [{"functionResponse": answer}]
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
                found: dict[str, Any] = {"name": function.get("name"), "args": args}
                if str(call.get("id", "")).startswith("gemini-"):
                    found["id"] = call["id"].removeprefix("gemini-")
                parts.append({"functionCall": found})
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
        # parametersJsonSchema takes the JSON Schema as OpenAI callers write it; Gemini's
        # older ``parameters`` takes only an OpenAPI subset of it.
        body["tools"] = [{"functionDeclarations": [
            {"name": t["name"], **({"description": t["description"]} if t.get("description")
                                   else {}),
             **({"parametersJsonSchema": t["parameters"]} if t.get("parameters") else {})}
            for t in tools]}]
    choice = extra.get("tool_choice")
    if tools and choice is not None:
        calling: dict[str, Any] = {"mode": {"none": "NONE", "required": "ANY"}.get(
            choice if isinstance(choice, str) else "", "AUTO")}
        if isinstance(choice, dict) and choice.get("function"):
            calling = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
        body["toolConfig"] = {"functionCallingConfig": calling}
    return body


def _call_id(call: dict[str, Any]) -> str:
    """An OpenAI tool call id for a Gemini ``functionCall`` (its own id kept inside)."""
    own = call.get("id")
    return f"gemini-{own}" if own else "call_" + uuid.uuid4().hex[:24]


def _calls_of(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g(p, "functionCall", "function_call") for p in parts
            if g(p, "functionCall", "function_call")]


def response_to_openai(response: dict[str, Any], model: str) -> dict[str, Any]:
    """A Gemini answer as a ``chat.completion``; a blocked one raises ``content_blocked``."""
    reason = block_reason(response)
    text = response_text(response)
    if reason and not text:
        raise ContentBlocked(reason)
    calls = [
        {"id": _call_id(call), "type": "function", "function": {
            "name": call.get("name"), "arguments": json.dumps(call.get("args") or {})}}
        for call in _calls_of(parts_of(response))
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


async def stream_to_openai(
    chunks: AsyncIterator[StreamEvent], model: str
) -> AsyncIterator[StreamEvent]:
    ident = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    usage: TokenUsage | None = None
    final = False
    started = False
    calls = 0
    async for piece in chunks:
        if piece.blocked and not piece.text and not started:
            raise ContentBlocked(piece.blocked)  # before the first byte: an HTTP error
        if not started:
            started = True
            yield StreamEvent(chunk({"role": "assistant", "content": ""}))
        if piece.text:
            yield StreamEvent(chunk({"content": piece.text}), text=piece.text)
        for call in _calls_of(parts_of(piece.payload)):  # Gemini sends each call whole
            yield StreamEvent(chunk({"tool_calls": [{
                "index": calls, "id": _call_id(call), "type": "function",
                "function": {"name": call.get("name"),
                             "arguments": json.dumps(call.get("args") or {})}}]}))
            calls += 1
        finish = g((piece.payload.get("candidates") or [{}])[0], "finishReason", "finish_reason")
        if piece.usage is not None:
            usage, final = piece.usage, piece.final
        if finish:
            yield StreamEvent(chunk({}, "tool_calls" if calls else FINISH_TO_OPENAI.get(finish,
                                                                                  "stop")))
    if usage is not None:
        yield StreamEvent({"id": ident, "object": "chat.completion.chunk", "created": created,
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
    pending: dict[str, list[str]] = {}  # function name → ids of its calls not yet answered
    for number, content in enumerate(contents or []):
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for index, part in enumerate(content.get("parts") or []):
            inline = g(part, "inlineData", "inline_data")
            call = g(part, "functionCall", "function_call")
            answer = g(part, "functionResponse", "function_response")
            if isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif inline:
                mime = g(inline, "mimeType", "mime_type", "image/png")
                parts.append({"type": "image_url",
                              "image_url": {"url": f"data:{mime};base64,{inline.get('data', '')}"}})
            elif isinstance(call, dict):
                ident = f"gemini-{call['id']}" if call.get("id") else f"call_{number}_{index}"
                pending.setdefault(str(call.get("name")), []).append(ident)
                calls.append({"id": ident, "type": "function", "function": {
                    "name": call.get("name"), "arguments": json.dumps(call.get("args") or {})}})
            elif isinstance(answer, dict):
                name = str(answer.get("name"))
                waiting = pending.get(name) or []
                ident = (f"gemini-{answer['id']}" if answer.get("id")
                         else waiting.pop(0) if waiting else f"call_{name}")
                messages.append({"role": "tool", "tool_call_id": ident,
                                 "content": json.dumps(answer.get("response") or {})})
        if not parts and not calls:
            continue
        role = "assistant" if content.get("role") == "model" else "user"
        entry: dict[str, Any]
        if all(p["type"] == "text" for p in parts):
            entry = {"role": role, "content": "".join(p["text"] for p in parts) or None}
        else:
            entry = {"role": role, "content": parts}
        if calls:
            entry["tool_calls"] = calls
        messages.append(entry)
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
    declared = tools.declarations(body)
    if declared:
        out["tools"] = [{"type": "function", "function": {
            "name": d.get("name"), "description": d.get("description", ""),
            "parameters": g(d, "parametersJsonSchema", "parameters_json_schema")
            or tools.openapi_to_json_schema(d.get("parameters")) or {"type": "object",
                                                                     "properties": {}}}}
            for d in declared]
        tool_config = g(body, "toolConfig", "tool_config") or {}
        calling = g(tool_config, "functionCallingConfig", "function_calling_config") or {}
        mode = calling.get("mode")
        allowed = g(calling, "allowedFunctionNames", "allowed_function_names") or []
        if mode == "NONE":
            out["tool_choice"] = "none"
        elif mode == "ANY" and len(allowed) == 1:
            out["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        elif mode == "ANY":
            out["tool_choice"] = "required"
    return out


def response_from_openai(
    completion: dict[str, Any], usage: TokenUsage, model: str
) -> dict[str, Any]:
    choice = (completion.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    parts += [_function_call(call) for call in (choice.get("message") or {}).get("tool_calls")
              or []]
    return {
        "candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]},
                        "finishReason": FINISH_FROM_OPENAI.get(
                            choice.get("finish_reason") or "stop", "STOP"),
                        "index": 0}],
        "usageMetadata": usage_to_gemini(usage),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:24],
    }


def _function_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    try:
        args = json.loads(function.get("arguments") or "{}")
    except ValueError:
        args = {}
    found: dict[str, Any] = {"name": function.get("name"), "args": args}
    ident = str(call.get("id") or "")
    if ident.startswith("gemini-"):
        found["id"] = ident.removeprefix("gemini-")
    return {"functionCall": found}


async def stream_from_openai(
    chunks: AsyncIterator[StreamEvent], model: str
) -> AsyncIterator[StreamEvent]:
    """OpenAI chunks → Gemini chunks; tool calls, streamed in pieces by OpenAI, are sent
    whole (as Gemini sends them) in the last chunk."""
    response_id = uuid.uuid4().hex[:24]
    finish = "STOP"
    usage: TokenUsage | None = None
    final = False
    calls: dict[int, dict[str, Any]] = {}
    async for piece in chunks:
        for choice in piece.payload.get("choices") or ():
            for call in (choice.get("delta") or {}).get("tool_calls") or ():
                known = calls.setdefault(call.get("index", 0), {"id": None, "function": {
                    "name": "", "arguments": ""}})
                function = call.get("function") or {}
                known["id"] = known["id"] or call.get("id")
                known["function"]["name"] += function.get("name") or ""
                known["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                finish = FINISH_FROM_OPENAI.get(choice["finish_reason"], "STOP")
        if piece.usage is not None:
            usage, final = piece.usage, piece.final
        if piece.text:
            yield StreamEvent({"candidates": [{"content": {"role": "model", "parts": [
                {"text": piece.text}]}, "index": 0}], "modelVersion": model,
                "responseId": response_id}, text=piece.text)
    parts = [_function_call(calls[i]) for i in sorted(calls)] or [{"text": ""}]
    last: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": parts},
                                            "finishReason": finish, "index": 0}],
                            "modelVersion": model, "responseId": response_id}
    if usage is not None:
        last["usageMetadata"] = usage_to_gemini(usage)
    yield StreamEvent(last, usage=usage, final=final)
