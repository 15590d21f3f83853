"""The vendor-native chat faces: Anthropic Messages and Gemini ``generateContent``.

A body for the face's own vendor goes to that vendor unchanged (new options,
thinking, cache control and safety settings included) and comes back unchanged.
A body naming another model (``mock/echo``, ``gpt-*``, ``gemini-*`` on the
Anthropic face, ...) is translated to the OpenAI format, run like any other
chat call, and translated back, stream events included. Either way the call
goes through the same pipeline, and errors are rendered in the face's shape.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from gateway.auth import Identity
from gateway.edge.schemas import (
    AnthropicMessagesRequest,
    ChatCompletionRequest,
    GeminiRequest,
    load_object,
    validate,
)
from gateway.errors import ClassroomError, InvalidRequest
from gateway.history.artifacts import ArtifactStore, NewArtifact
from gateway.keypool import ProviderKey
from gateway.pricing import TokenUsage
from gateway.pricing.tokens import prompt_upper_bound
from gateway.providers import anthropic_format, google_format, mock, mock_media
from gateway.providers.base import ChatResult, NativeCall, StreamEvent
from gateway.services import tools
from gateway.services.calls import Caller
from gateway.services.chat import ChatPlan, ChatService, PreparedChat


def anthropic_frame(piece: StreamEvent) -> bytes:
    kind = piece.event or piece.payload.get("type", "message")
    return f"event: {kind}\ndata: {json.dumps(piece.payload, separators=(',', ':'))}\n\n".encode()


def anthropic_error_frame(error: ClassroomError) -> bytes:
    return f"event: error\ndata: {json.dumps(error.to_anthropic())}\n\n".encode()


def google_frame(piece: StreamEvent) -> bytes:
    return f"data: {json.dumps(piece.payload, separators=(',', ':'))}\r\n\r\n".encode()


def google_error_frame(error: ClassroomError) -> bytes:
    return f"data: {json.dumps(error.to_google())}\r\n\r\n".encode()


def _last_user_text(messages: Any, role_key: str, user: str, parts_key: str) -> str | None:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get(role_key, user) == user:
            content = message.get(parts_key)
            if isinstance(content, str):
                return content
            parts = content if isinstance(content, list) else []
            return " ".join(p["text"] for p in parts
                            if isinstance(p, dict) and isinstance(p.get("text"), str))
    return None


def mock_gemini_image(body: dict[str, Any], prompt: str) -> dict[str, Any]:
    """The mock's NanoBanana: a PNG from the prompt (and any images sent), in Gemini's shape."""
    salt = b"".join(
        base64.b64decode(google_format.g(p, "inlineData", "inline_data").get("data", ""))
        for c in body.get("contents") or [] if isinstance(c, dict)
        for p in c.get("parts") or [] if google_format.g(p, "inlineData", "inline_data"))
    data = base64.b64encode(mock_media.png(prompt, 512, 512, salt)).decode()
    usage = TokenUsage(prompt_tokens=mock.json_tokens(body.get("contents")))
    return {"candidates": [{"content": {"role": "model", "parts": [
        {"text": f"A mock image for: {prompt}"},
        {"inlineData": {"mimeType": "image/png", "data": data}}]},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": google_format.usage_to_gemini(usage), "modelVersion": "mock/image"}


class NativeApis:
    def __init__(self, chat: ChatService, artifacts: ArtifactStore | None = None) -> None:
        self.chat = chat
        self.artifacts = artifacts

    def _keeper(self, identity: Identity, model: Any, prompt: str | None) -> Any:
        """Images a Gemini image model answered with go to the caller's gallery."""
        artifacts = self.artifacts

        async def keep(result: ChatResult, run_id: int) -> dict[str, float]:
            found = google_format.images_of(result.response)
            for index, (mime, data) in enumerate(found):
                if artifacts is not None:
                    await artifacts.save(NewArtifact(
                        identity.name, identity.tenant, mime, base64.b64decode(data), model.id,
                        prompt, run_id, meta={"index": index, "api": "google"}))
            return {"images": len(found)} if found else {}

        return keep

    @property
    def calls(self) -> Any:
        return self.chat.calls

    def _native_plan(self, model: Any, body: dict[str, Any], version: str,
                     frame: Any, frame_error: Any) -> ChatPlan:
        adapter = self.chat.registry.adapter(model.provider)
        timeout = self.chat.timeout

        def call(key: ProviderKey | None) -> NativeCall:
            return NativeCall(model, body, key, timeout, version)

        async def complete(key: ProviderKey | None, stack: AsyncExitStack) -> ChatResult:
            result: ChatResult = await adapter.native(call(key))
            return result

        async def open_stream(key: ProviderKey | None,
                              stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
            pieces: AsyncIterator[StreamEvent] = await adapter.open_native_stream(call(key), stack)
            return pieces

        return ChatPlan(complete, open_stream, frame, frame_error)

    def _translated_plan(self, model: Any, request: ChatCompletionRequest, respond: Any,
                         restream: Any, frame: Any, frame_error: Any) -> ChatPlan:
        inner = self.chat.openai_plan(model, request, None)

        async def complete(key: ProviderKey | None, stack: AsyncExitStack) -> ChatResult:
            result = await inner.complete(key, stack)
            return ChatResult(respond(result.response, result.usage, model.id), result.usage,
                              result.text)

        async def open_stream(key: ProviderKey | None,
                              stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
            pieces: AsyncIterator[StreamEvent] = restream(await inner.open(key, stack))
            return pieces

        return ChatPlan(complete, open_stream, frame, frame_error)

    # -- Anthropic ---------------------------------------------------------------------------------

    async def prepare_anthropic(self, identity: Identity, raw: bytes, *, source: str,
                                content_type: str | None = None) -> PreparedChat:
        caller = Caller(identity, source, "anthropic")
        body: dict[str, Any] = {}
        request_text: str | None = None
        try:
            body = load_object(raw, content_type)
            request_text = _last_user_text(body.get("messages"), "role", "user", "content")
            validate(body, AnthropicMessagesRequest)
            tools.check_anthropic(body)
            model = self.calls.resolve(caller, body["model"], ("chat",))
            request = None
            if model.provider != "anthropic":
                request = validate(anthropic_format.request_from_anthropic(body),
                                   ChatCompletionRequest)
        except ClassroomError as error:
            model_name = body.get("model") if isinstance(body.get("model"), str) else None
            await self.calls.refuse(caller, error, kind="chat", model=model_name,
                                    stream=body.get("stream") is True, request_text=request_text)
            raise
        stream = body.get("stream") is True
        if request is None:
            plan = self._native_plan(model, body, "", anthropic_frame, anthropic_error_frame)
            return await self.chat.begin(
                caller, model, None, plan, request_text, stream=stream,
                prompt_estimate=prompt_upper_bound(model, body), max_output=body["max_tokens"],
            )
        estimate = prompt_upper_bound(model, request)

        def restream(pieces: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
            return anthropic_format.stream_from_openai(pieces, model.id, estimate)

        plan = self._translated_plan(model, request, anthropic_format.response_from_openai,
                                     restream, anthropic_frame, anthropic_error_frame)
        return await self.chat.begin(caller, model, request, plan, request_text,
                                     prompt_estimate=estimate)

    def _mock_image_plan(self, body: dict[str, Any], prompt: str) -> ChatPlan:
        adapter = self.chat.registry.adapter("mock")

        async def complete(key: ProviderKey | None, stack: AsyncExitStack) -> ChatResult:
            await adapter.media_latency()
            answer = mock_gemini_image(body, prompt)
            usage = google_format.usage_from_gemini(answer["usageMetadata"])
            return ChatResult(answer, usage, google_format.response_text(answer))

        async def open_stream(key: ProviderKey | None,
                              stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
            result = await complete(key, stack)

            async def one() -> AsyncIterator[StreamEvent]:
                yield StreamEvent(result.response, text=result.text, usage=result.usage, final=True)

            return one()

        return ChatPlan(complete, open_stream, google_frame, google_error_frame)

    # -- Google -----------------------------------------------------------------------------------

    async def prepare_google(self, identity: Identity, raw: bytes, *, model_name: str,
                             stream: bool, version: str, source: str,
                             content_type: str | None = None) -> PreparedChat:
        caller = Caller(identity, source, "google")
        body: dict[str, Any] = {}
        request_text: str | None = None
        try:
            body = load_object(raw, content_type)
            contents = body.get("contents")
            if not contents:
                raise InvalidRequest("The field 'contents' is required: a list of "
                                     "{role, parts} objects.", param="contents")
            validate(body, GeminiRequest)
            tools.check_gemini(body)
            # The SDKs' shorthands; Gemini's REST API itself wants Content objects.
            if isinstance(contents, str):
                body["contents"] = [{"role": "user", "parts": [{"text": contents}]}]
            for name in ("systemInstruction", "system_instruction"):
                if isinstance(body.get(name), str):
                    body[name] = {"parts": [{"text": body[name]}]}
            request_text = contents if isinstance(contents, str) else _last_user_text(
                contents, "role", "user", "parts")
            model = self.calls.resolve(caller, model_name, ("chat", "image"))
            request = None
            if model.provider != "google" and model.kind == "chat":
                request = validate(google_format.request_from_gemini(body, model_name, stream),
                                   ChatCompletionRequest)
            elif model.provider not in ("google", "mock"):
                raise InvalidRequest(
                    f"The model '{model_name}' cannot answer generateContent; use a gemini-* "
                    "model, mock/image, or a chat model such as mock/echo.", param="model")
        except ClassroomError as error:
            await self.calls.refuse(caller, error, kind="chat", model=model_name, stream=stream,
                                    request_text=request_text)
            raise
        if model.kind == "image" and model.provider == "mock":
            plan = self._mock_image_plan(body, request_text or "")
            plan.keep = self._keeper(identity, model, request_text)
            return await self.chat.begin(caller, model, None, plan, request_text, stream=stream,
                                         kind="image",
                                         prompt_estimate=prompt_upper_bound(model, body))
        if request is None:
            config = google_format.g(body, "generationConfig", "generation_config") or {}
            plan = self._native_plan(model, body, version, google_frame, google_error_frame)
            if model.kind == "image":
                plan.keep = self._keeper(identity, model, request_text)
            return await self.chat.begin(
                caller, model, None, plan, request_text, stream=stream, kind=model.kind,
                prompt_estimate=prompt_upper_bound(model, body),
                max_output=google_format.g(config, "maxOutputTokens", "max_output_tokens"),
            )

        def restream(pieces: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
            return google_format.stream_from_openai(pieces, model.id)

        plan = self._translated_plan(model, request, google_format.response_from_openai,
                                     restream, google_frame, google_error_frame)
        return await self.chat.begin(caller, model, request, plan, request_text)
