"""OpenAI's REST API: chat completions (SSE with the ``include_usage`` chunk), embeddings
(float or base64), image generation and edits (multipart), speech; OpenAI's error shape,
``x-request-id``, ``retry-after`` / ``retry-after-ms`` on 429."""

from __future__ import annotations

import array
import asyncio
import base64
import io
import json
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.common import (
    FAKE_MP3,
    Fake,
    base_of,
    directives,
    parse_multipart,
    planned_tool_calls,
    png,
    png_b64,
    request_id,
    sse_event,
    strip_directives,
    tool_id,
    words,
)

ERROR_TYPES = {401: "invalid_request_error", 429: "requests", 400: "invalid_request_error"}
IMAGE_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}


def error_shape(status: int, kind: str, message: str, **_: Any) -> dict[str, Any]:
    code = {"auth": "invalid_api_key", "rate_limit": "rate_limit_exceeded"}.get(kind, kind)
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"),
                      "param": None, "code": code}}


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


fake = Fake("openai", error_shape, bearer)


def _text(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    texts = [p.get("text", "") for p in content or [] if p.get("type") == "text"]
    images = sum(1 for p in content or [] if p.get("type") == "image_url")
    return " ".join(texts), images


def _tool_results(messages: list[dict[str, Any]]) -> list[str]:
    """The results a conversation ends with (role ``tool``), in order."""
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, _text(message.get("content"))[0])
    return results


def _answer(body: dict[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    messages = body.get("messages") or []
    last, images, prompt_words = "", 0, 0
    for message in messages:
        text, seen = _text(message.get("content"))
        images += seen
        prompt_words += len(words(text))
        if message.get("role") == "user":
            last = text
    said = directives(last)
    reply = f"Fake OpenAI reply: {strip_directives(last)}"
    results = _tool_results(messages)
    if results:
        reply = "Fake OpenAI reply: tool said: " + " | ".join(results)
    if images:
        reply += f" (saw {images} image{'s' if images > 1 else ''})"
    if "words" in said:
        reply = " ".join(f"w{i}" for i in range(int(said["words"]["n"])))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    pieces = words(reply)[:limit] if limit else words(reply)
    reply = " ".join(pieces)
    numbers = said.get("usage", {})
    completion = int(numbers.get("completion", len(pieces)))
    usage = {
        "prompt_tokens": int(numbers.get("prompt", prompt_words + 7)),
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": int(numbers.get("cached", 0)),
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": int(numbers.get("reasoning", 0)),
                                      "audio_tokens": 0},
    }
    usage["total_tokens"] = usage["prompt_tokens"] + completion
    calls: list[dict[str, Any]] = []
    if not results and body.get("tool_choice") != "none":
        offered = [((t.get("function") or {}).get("name", ""),
                    (t.get("function") or {}).get("parameters"))
                   for t in body.get("tools") or [] if t.get("type") == "function"]
        choice = body.get("tool_choice")
        if choice == "required" and "tools" not in said:
            said = {**said, "tool": said.get("tool", {})}
        elif isinstance(choice, dict):
            said = {**said, "tool": {"name": (choice.get("function") or {}).get("name")}}
        planned = planned_tool_calls(said, offered)
        if body.get("parallel_tool_calls") is False:
            planned = planned[:1]
        calls = [{"id": tool_id("call_"), "type": "function",
                  "function": {"name": name, "arguments": json.dumps(arguments)}}
                 for name, arguments in planned]
    return reply, usage, calls


@fake.route("/v1/chat/completions", ["POST"])
async def chat(request: Request) -> Response:
    body = await request.json()
    if not body.get("model") or not body.get("messages"):
        field = "model" if not body.get("model") else "messages"
        return JSONResponse({"error": {"message": f"Missing required parameter: '{field}'.",
                                       "type": "invalid_request_error", "param": field,
                                       "code": "missing_required_parameter"}}, 400)
    last = str(body["messages"][-1].get("content"))
    if "[[too-long]]" in last:
        return JSONResponse({"error": {
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 250000 tokens.", "type": "invalid_request_error",
            "param": "messages", "code": "context_length_exceeded"}}, 400)
    reply, usage, tools = _answer(body)
    request.state.record["usage"] = usage  # what this vendor counts against its TPM
    ident, created = "chatcmpl-" + request_id("")[:24], int(time.time())
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if tools else reply,
                                   "refusal": None, "annotations": []}
        if tools:
            message["tool_calls"] = tools
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": created,
            "model": body["model"] + "-2024-fake", "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if tools else (
                             "length" if body.get("max_tokens") and len(words(reply)) >=
                             body["max_tokens"] else "stop")}],
            "usage": usage, "service_tier": "default",
        })
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    delay = float(directives(last).get("words", {}).get("delay", 0))

    async def events() -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": ident, "object": "chat.completion.chunk", "created": created,
                "model": body["model"], "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}
            if include_usage:
                data["usage"] = None
            return data

        yield sse_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        die_after = int(directives(last).get("die", {}).get("after", -1))
        garbage_after = int(directives(last).get("garbage", {}).get("after", -1))
        if tools:  # OpenAI streams each call's id and name first, then its arguments in pieces
            for index, call in enumerate(tools):
                yield sse_event(chunk({"tool_calls": [{
                    "index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}]}))
                arguments = call["function"]["arguments"]
                for start in range(0, len(arguments), 7):
                    yield sse_event(chunk({"tool_calls": [{
                        "index": index, "function": {"arguments": arguments[start:start + 7]}}]}))
            yield sse_event(chunk({}, "tool_calls"))
            if include_usage:
                yield sse_event({"id": ident, "object": "chat.completion.chunk",
                                 "created": created, "model": body["model"], "choices": [],
                                 "usage": usage})
            yield sse_event("[DONE]")
            return
        for index, word in enumerate(words(reply)):
            if index == die_after:
                raise ConnectionAbortedError("the fake drops the stream (a [[die]] directive)")
            if index == garbage_after:  # a vendor sending something that is not its protocol
                yield b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n'
                return
            if delay:
                await asyncio.sleep(delay)
            yield sse_event(chunk({"content": word if index == 0 else " " + word}))
        yield sse_event(chunk({}, "stop"))
        if include_usage:
            yield sse_event({"id": ident, "object": "chat.completion.chunk", "created": created,
                             "model": body["model"], "choices": [], "usage": usage})
        yield sse_event("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"x-request-id": request_id()})


@fake.route("/v1/embeddings", ["POST"])
async def embeddings(request: Request) -> Response:
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    dims = int(body.get("dimensions") or 8)
    data = []
    for index, text in enumerate(inputs):
        seed = sum(ord(c) for c in str(text))
        vector = [((seed * (i + 3)) % 17 - 8) / 8 for i in range(dims)]
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(array.array("f", vector).tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(words(str(t))) for t in inputs)
    return JSONResponse({"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _image_answer(body: dict[str, Any], base: str, edits: int = 0) -> Response:
    prompt = str(body.get("prompt", ""))
    if "[[unsafe]]" in prompt:
        return JSONResponse({"error": {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "image_generation_user_error", "param": None,
            "code": "content_policy_violation"}}, 400)
    n = int(body.get("n") or 1)
    model = str(body.get("model", "dall-e-2"))
    items = []
    for i in range(n):
        if model.startswith("dall-e") and body.get("response_format", "url") == "url":
            items.append({"url": f"{base.rstrip('/')}/files/{i}.png"})
        else:
            items.append({"b64_json": png_b64((10 * i, 120, 200 - edits))})
        if model == "dall-e-3":
            items[-1]["revised_prompt"] = "A revised " + prompt
    answer: dict[str, Any] = {"created": int(time.time()), "data": items}
    if model.startswith("gpt-image"):
        quality = str(body.get("quality") or "auto")
        prompt_tokens = len(words(prompt)) + 5
        answer["usage"] = {
            "input_tokens": prompt_tokens + 323 * edits,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 323 * edits},
            "output_tokens": IMAGE_TOKENS.get(quality, 1056) * n,
            "total_tokens": prompt_tokens + 323 * edits + IMAGE_TOKENS.get(quality, 1056) * n,
        }
    return JSONResponse(answer)


@fake.route("/v1/images/generations", ["POST"])
async def images(request: Request) -> Response:
    return _image_answer(await request.json(), base_of(request))


@fake.route("/v1/images/edits", ["POST"])
async def image_edits(request: Request) -> Response:
    fields, files = parse_multipart(request.headers["content-type"], await request.body())
    images = [f for f in files if f["name"] in ("image", "image[]")]
    if not images:
        return JSONResponse({"error": {"message": "image is required", "param": "image",
                                       "type": "invalid_request_error", "code": None}}, 400)
    return _image_answer(fields, base_of(request), edits=len(images))


@fake.route("/files/{name}", ["GET"], auth=False)
async def files(request: Request) -> Response:
    return Response(png(), media_type="image/png")


@fake.route("/v1/audio/speech", ["POST"])
async def speech(request: Request) -> Response:
    body = await request.json()
    if body.get("response_format") == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 800)
        return Response(buffer.getvalue(), media_type="audio/wav")
    return Response(FAKE_MP3, media_type="audio/mpeg")


app = fake.app()
