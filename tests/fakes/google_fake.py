"""Gemini's REST API (``/v1`` and ``/v1beta``): ``models/{m}:generateContent``,
``:streamGenerateContent?alt=sse``, ``:embedContent``, ``:batchEmbedContents``;
``usageMetadata`` with cached and thoughts counts; image models answer with
``inlineData``; safety blocks (``promptFeedback.blockReason``, ``finishReason: SAFETY``);
Google's error shape (a bad key is 400 ``API_KEY_INVALID``, as Google does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.common import (
    Fake,
    directives,
    planned_tool_calls,
    png_b64,
    sse_event,
    strip_directives,
    words,
)

STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
            404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_shape(status: int, kind: str, message: str,
                retry_after: float | None = None) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if kind == "auth":
        message = "API key not valid. Please pass a valid API key."
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"})
    if status == 429:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{retry_after if retry_after is not None else 1:g}s"})
    return {"error": {"code": status, "message": message,
                      "status": STATUSES.get(status, "INTERNAL"), "details": details}}


def api_key(request: Request) -> str | None:
    return request.headers.get("x-goog-api-key") or request.query_params.get("key")


fake = Fake("google", error_shape, api_key)
fake.auth_status = 400
SAFETY = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
           "blocked": True},
          {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]


def _read(body: dict[str, Any]) -> tuple[str, int, int]:
    last, images, prompt_words = "", 0, 0
    for content in body.get("contents") or []:
        for part in content.get("parts") or []:
            if isinstance(part.get("text"), str):
                prompt_words += len(words(part["text"]))
                if content.get("role", "user") == "user":
                    last = part["text"]
            if "inlineData" in part or "inline_data" in part:
                images += 1
    return last, images, prompt_words


def _tool_results(body: dict[str, Any]) -> list[str]:
    """The ``functionResponse`` parts of the last content, in order."""
    contents = body.get("contents") or []
    if not contents:
        return []
    found = []
    for part in contents[-1].get("parts") or []:
        answer = part.get("functionResponse") or part.get("function_response")
        if answer:
            found.append(f"{answer.get('name')}={json.dumps(answer.get('response'))}")
    return found


def _tool_calls(body: dict[str, Any], said: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    config = (body.get("toolConfig") or body.get("tool_config") or {})
    calling = config.get("functionCallingConfig") or config.get("function_calling_config") or {}
    mode = calling.get("mode", "AUTO")
    if mode == "NONE":
        return []
    offered = [(d.get("name", ""), d.get("parametersJsonSchema") or d.get("parameters_json_schema")
                or d.get("parameters"))
               for tool in body.get("tools") or []
               for d in tool.get("functionDeclarations") or tool.get("function_declarations")
               or []]
    allowed = calling.get("allowedFunctionNames") or calling.get("allowed_function_names")
    if allowed:
        offered = [t for t in offered if t[0] in allowed]
    if mode == "ANY" and "tools" not in said:
        said = {**said, "tool": said.get("tool", {})}
    return [{"functionCall": {"name": name, "args": arguments}}
            for name, arguments in planned_tool_calls(said, offered)]


def _usage(numbers: dict[str, str], prompt_words: int, completion: int) -> dict[str, Any]:
    prompt = int(numbers.get("prompt", prompt_words + 4))
    total_out = int(numbers.get("completion", completion))
    thoughts = int(numbers.get("reasoning", 0))
    meta: dict[str, Any] = {"promptTokenCount": prompt,
                            "candidatesTokenCount": total_out - thoughts,
                            "totalTokenCount": prompt + total_out}
    if "cached" in numbers:
        meta["cachedContentTokenCount"] = int(numbers["cached"])
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def _answer(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    last, images, prompt_words = _read(body)
    said = directives(last)
    if "block" in said:
        return {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": SAFETY},
                "usageMetadata": {"promptTokenCount": prompt_words, "totalTokenCount":
                                  prompt_words}, "modelVersion": model}, []
    if "unsafe-answer" in said:
        return {"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY}],
                "usageMetadata": _usage({}, prompt_words, 0), "modelVersion": model}, []
    reply = f"Fake Gemini reply: {strip_directives(last)}"
    results = _tool_results(body)
    if results:
        reply = "Fake Gemini reply: tool said: " + " | ".join(results)
    calls = [] if results else _tool_calls(body, said)
    if calls:  # Gemini answers a call with the call alone, finishReason STOP
        answer = {"candidates": [{"content": {"role": "model", "parts": calls},
                                  "finishReason": "STOP", "index": 0}],
                  "usageMetadata": _usage(said.get("usage", {}), prompt_words, 5 * len(calls)),
                  "modelVersion": model, "responseId": "resp-fake"}
        return answer, []
    if images:
        reply += f" (saw {images} image{'s' if images > 1 else ''})"
    if "words" in said:
        reply = " ".join(f"w{i}" for i in range(int(said["words"]["n"])))
    system = body.get("systemInstruction")
    if system:
        reply += " [system: " + " ".join(p.get("text") or "" for p in system.get("parts", [])) + "]"
    pieces = words(reply)
    parts: list[dict[str, Any]] = [{"text": reply}]
    completion = len(pieces)
    if "image" in model:
        parts.append({"inlineData": {"mimeType": "image/png", "data": png_b64((images * 40, 90,
                                                                                 30))}})
        completion += 1290
    answer = {"candidates": [{"content": {"role": "model", "parts": parts},
                              "finishReason": "STOP", "index": 0}],
              "usageMetadata": _usage(said.get("usage", {}), prompt_words, completion),
              "modelVersion": model, "responseId": "resp-fake"}
    return answer, pieces


@fake.route("/{version}/models/{target:path}", ["POST"])
async def models(request: Request) -> Response:
    model, _, method = request.path_params["target"].rpartition(":")
    body = await request.json()
    if method in ("embedContent", "batchEmbedContents"):
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        vectors = []
        for item in requests:
            text = " ".join(p.get("text", "") for p in item["content"]["parts"])
            dims = int(item.get("outputDimensionality") or 8)
            seed = sum(ord(c) for c in text)
            vectors.append({"values": [((seed * (i + 5)) % 13 - 6) / 6 for i in range(dims)]})
        if method == "embedContent":
            return JSONResponse({"embedding": vectors[0]})
        return JSONResponse({"embeddings": vectors})
    if not body.get("contents") or not isinstance(body["contents"], list):
        return fake.fail(400, "invalid", "* GenerateContentRequest.contents: contents is not "
                         "specified")
    last, _, _ = _read(body)
    if "[[too-long]]" in last:
        return fake.fail(400, "invalid", "The input token count (2000000) exceeds the maximum "
                         "number of tokens allowed (1048576).")
    answer, pieces = _answer(model, body)
    if method == "generateContent":
        return JSONResponse(answer)
    if method != "streamGenerateContent":
        return fake.fail(404, "missing", f"Method {method} not found")
    delay = float(directives(last).get("words", {}).get("delay", 0))

    async def events() -> AsyncIterator[bytes]:
        if not pieces:
            yield sse_event(answer, newline="\r\n")
            return
        meta = answer["usageMetadata"]
        for index, word in enumerate(pieces):
            if delay:
                await asyncio.sleep(delay)
            last_one = index == len(pieces) - 1
            chunk: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [
                    {"text": word if index == 0 else " " + word}]}, "index": 0}],
                "usageMetadata": meta if last_one else {
                    "promptTokenCount": meta["promptTokenCount"],
                    "totalTokenCount": meta["promptTokenCount"]},
                "modelVersion": model, "responseId": "resp-fake"}
            if last_one:
                chunk["candidates"][0]["finishReason"] = "STOP"
            yield sse_event(chunk, newline="\r\n")

    return StreamingResponse(events(), media_type="text/event-stream")


app = fake.app()
