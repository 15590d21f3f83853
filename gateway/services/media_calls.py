"""Embeddings, images (generate and edit, with multi-turn sessions and style presets)
and speech: one call each, through the shared steps of :mod:`gateway.services.calls`.

Every image and every audio clip is stored as an artifact linked to its run, so
the caller can ask for ``url`` (``<gateway>/api/artifacts/{id}``) or
``b64_json`` and find it again in the gallery.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.auth import Identity
from gateway.config.settings import Settings
from gateway.edge.images import check_image
from gateway.edge.schemas import (
    EmbeddingRequest,
    ImageRequest,
    SpeechRequest,
    load_object,
    validate,
)
from gateway.errors import ClassroomError, ContentBlocked, InvalidRequest
from gateway.history.artifacts import ArtifactStore, NewArtifact
from gateway.keypool import ProviderKey
from gateway.policy.admission import CallEstimate
from gateway.pricing import (
    MILLION,
    ModelInfo,
    TokenUsage,
    image_cost,
    image_token_cost,
    speech_cost,
    token_cost,
)
from gateway.pricing.tokens import text_upper_bound, texts_upper_bound
from gateway.providers import google_format, mock_media
from gateway.providers.base import NativeCall
from gateway.providers.mock import count_tokens
from gateway.services.calls import Caller, Calls, Metered

STYLE_PRESETS = {
    "photo": "a photorealistic photograph, natural light",
    "watercolor": "a soft watercolour painting",
    "anime": "an anime illustration with clean lines",
    "pixel-art": "8-bit pixel art",
    "3d-render": "a 3D render with soft shadows",
    "sketch": "a pencil sketch",
    "oil-painting": "an oil painting with visible brush strokes",
    "comic": "a comic-book panel with bold ink",
}
CLASSROOM_FIELDS = ("session_id", "style", "voice_settings")
MIME_OF_FORMAT = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/opus",
                  "aac": "audio/aac", "flac": "audio/flac", "pcm": "audio/pcm"}


@dataclass
class Images:
    """What an image call produced: the files, and the numbers to meter."""

    files: list[tuple[bytes, str]]
    usage: TokenUsage | None = None
    openai_usage: dict[str, Any] | None = None
    revised: list[str | None] = field(default_factory=list)


@dataclass
class EmbedBatch:
    """A Gemini embedding request: the body as sent, and what it asks to embed."""

    model: str
    body: dict[str, Any]
    texts: list[str]
    dims: int | None


def styled(prompt: str, style: str | None) -> str:
    preset = STYLE_PRESETS.get(style or "")
    return f"{prompt}\n\nStyle: {preset}." if preset else prompt


def _upper_image_estimate(model: ModelInfo, n: int) -> int | None:
    prices = [p for sizes in model.image_prices.values() for p in sizes.values()]
    if "per_image" in model.prices:
        prices.append(model.prices["per_image"])
    if model.priced and model.kind == "image":
        prices.append(model.prices.get("output_per_mtok", Decimal(0)) * 6000 / MILLION)
    return int(max(prices) * MILLION * n) if prices else None


class MediaService:
    def __init__(self, calls: Calls, artifacts: ArtifactStore, settings: Settings) -> None:
        self.calls = calls
        self.artifacts = artifacts
        self.settings = settings
        self._voice_ids: dict[str, tuple[float, dict[str, str]]] = {}

    def adapter(self, model: ModelInfo) -> Any:
        return self.calls.registry.adapter(model.provider)

    async def _resolve(self, caller: Caller, body: Any, kind: str, request_text: str | None,
                       parse: Callable[[], Any]) -> tuple[Any, ModelInfo, int]:
        model_name = body.get("model") if isinstance(body, dict) else None
        try:
            request = parse()
            model = self.calls.resolve(caller, request.model, (kind,))
        except ClassroomError as error:
            await self.calls.refuse(caller, error, kind=kind, request_text=request_text,
                                    model=model_name if isinstance(model_name, str) else None)
            raise
        run_id = await self.calls.start(caller, model, kind, request_text=request_text)
        return request, model, run_id

    # -- embeddings ----------------------------------------------------------------------------

    async def embeddings(self, identity: Identity, body: dict[str, Any], *,
                         source: str) -> dict[str, Any]:

        caller = Caller(identity, source, "openai")
        request, model, run_id = await self._resolve(
            caller, body, "embedding", None, lambda: validate(body, EmbeddingRequest))
        texts = request.texts()
        estimate_tokens = sum(count_tokens(t) for t in texts)
        adapter = self.adapter(model)
        timeout = self.settings.chat_timeout_seconds

        async def attempt(key: ProviderKey | None, stack: AsyncExitStack) -> dict[str, Any]:
            if model.provider == "openai":
                result: dict[str, Any] = await adapter.embeddings(
                    key, {**body, "model": model.vendor_model}, timeout)
                return result
            if model.provider == "google":
                vectors = await adapter.embed(key, model.vendor_model, texts, request.dimensions,
                                              timeout)
            else:
                await adapter.media_latency()
                vectors = [mock_media.embed(t, request.dimensions or mock_media.DIMENSIONS)
                           for t in texts]
            as_b64 = request.encoding_format == "base64"
            return {
                "object": "list", "model": model.id,
                "data": [{"object": "embedding", "index": i,
                          "embedding": mock_media.floats_base64(v) if as_b64 else v}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": estimate_tokens, "total_tokens": estimate_tokens,
                          "estimated": model.provider != "mock"},
            }

        async def meter(result: dict[str, Any]) -> Metered:
            reported = result.get("usage") or {}
            estimated = bool(reported.pop("estimated", False)) or not reported
            usage = TokenUsage(prompt_tokens=int(reported.get("prompt_tokens") or estimate_tokens),
                          estimated=estimated)
            return Metered(token_cost(model, usage), usage,
                           f"[{len(result.get('data') or [])} embedding(s)]",
                           priced_as=model.priced_as)

        bound = texts_upper_bound(model, texts)
        estimate = CallEstimate(bound, 0, token_cost(model,
                                                     TokenUsage(prompt_tokens=bound)).micro_usd)
        result, _ = await self.calls.once(caller, model, run_id, estimate, attempt, meter)
        return result

    async def google_embeddings(self, identity: Identity, raw: bytes, *, model_name: str,
                                method: str, version: str, source: str,
                                content_type: str | None = None) -> dict[str, Any]:
        """``:embedContent`` / ``:batchEmbedContents`` for Gemini models (passed through) and
        the mock (answered in Google's shape)."""
        caller = Caller(identity, source, "google")

        def parse() -> Any:
            body = load_object(raw, content_type)
            requests = body.get("requests") if method == "batchEmbedContents" else [body]
            if not isinstance(requests, list) or not requests or not all(
                    isinstance(r, dict) and isinstance(r.get("content"), dict) for r in requests):
                field = "requests" if method == "batchEmbedContents" else "content"
                raise InvalidRequest(f"The field '{field}' is required.", param=field)
            texts = [" ".join(str(p.get("text", "")) for p in r["content"].get("parts") or [])
                     for r in requests]
            dims = requests[0].get("outputDimensionality")
            return EmbedBatch(model_name, body, texts, dims if isinstance(dims, int) else None)

        parsed, model, run_id = await self._resolve(caller, {"model": model_name}, "embedding",
                                                     None, parse)
        tokens = sum(count_tokens(t) for t in parsed.texts)
        adapter = self.adapter(model)

        async def attempt(key: ProviderKey | None, stack: AsyncExitStack) -> dict[str, Any]:
            if model.provider == "google":
                call = NativeCall(model, parsed.body, key, self.settings.chat_timeout_seconds,
                                  version)
                result: dict[str, Any] = (await adapter.native(call, method)).response
                return result
            if model.provider != "mock":
                raise InvalidRequest(f"The model '{model_name}' cannot answer {method}; use "
                                     "a Gemini embedding model or mock/embed.", param="model")
            await adapter.media_latency()
            vectors = [{"values": mock_media.embed(t, parsed.dims or mock_media.DIMENSIONS)}
                       for t in parsed.texts]
            if method == "embedContent":
                return {"embedding": vectors[0]}
            return {"embeddings": vectors}

        async def meter(result: dict[str, Any]) -> Metered:
            usage = TokenUsage(prompt_tokens=tokens, estimated=model.provider != "mock")
            return Metered(token_cost(model, usage), usage, f"[{len(parsed.texts)} embedding(s)]",
                           priced_as=model.priced_as)

        bound = texts_upper_bound(model, parsed.texts)
        estimate = CallEstimate(bound, 0, token_cost(model,
                                                     TokenUsage(prompt_tokens=bound)).micro_usd)
        result, _ = await self.calls.once(caller, model, run_id, estimate, attempt, meter)
        return result

    # -- images ----------------------------------------------------------------------------------

    async def images(
        self, identity: Identity, body: dict[str, Any], *, source: str, base_url: str,
        inputs: list[tuple[bytes, str]] | None = None, mask: bytes | None = None,
    ) -> dict[str, Any]:
        """Generate (no ``inputs``) or edit images; returns an OpenAI ``images`` response."""

        caller = Caller(identity, source, "openai")
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else None
        request, model, run_id = await self._resolve(
            caller, body, "image", prompt, lambda: self._image_request(body, inputs, mask))
        session_id = request.session_id or ("ses_" + base64.b32encode(
            run_id.to_bytes(6, "big")).decode().rstrip("=").lower())
        adapter = self.adapter(model)
        timeout = self.settings.image_timeout_seconds

        async def attempt(key: ProviderKey | None, stack: AsyncExitStack) -> Images:
            if model.provider == "openai":
                return await self._openai_images(adapter, key, model, body, request, inputs,
                                                 mask, timeout)
            if model.provider == "google":
                return await self._gemini_images(adapter, key, model, request, inputs, timeout)
            await adapter.media_latency()
            try:
                width, height = mock_media.parse_size(request.size)
            except ValueError as exc:
                raise InvalidRequest(f"The field 'size' is not valid: {exc}.",
                                     param="size") from exc
            salt = b"".join(data for data, _ in inputs or [])
            return Images([(mock_media.png(styled(request.prompt, request.style) + f"#{i}",
                                           width, height, salt), "image/png")
                           for i in range(request.n)])

        saved: list[dict[str, Any]] = []

        async def meter(result: Images) -> Metered:
            for index, (data, mime) in enumerate(result.files):
                saved.append(await self.artifacts.save(NewArtifact(
                    identity.name, identity.tenant, mime, data, model.id, request.prompt, run_id,
                    session_id=session_id,
                    meta={"index": index, "size": request.size, "quality": request.quality,
                          "style": request.style, "edit": bool(inputs)},
                )))
            return Metered(self._image_cost(model, request, result), result.usage,
                           f"[{len(result.files)} image(s)]", units={"images": len(result.files)},
                           priced_as=model.priced_as)

        estimate = CallEstimate(text_upper_bound(model, request.prompt), 0,
                                _upper_image_estimate(model, request.n))
        result, _ = await self.calls.once(caller, model, run_id, estimate, attempt, meter)
        data = []
        for index, row in enumerate(saved):
            item: dict[str, Any] = {}
            if request.response_format == "url":
                item["url"] = f"{base_url.rstrip('/')}/api/artifacts/{row['id']}"
            else:
                item["b64_json"] = base64.b64encode(result.files[index][0]).decode()
            if index < len(result.revised) and result.revised[index]:
                item["revised_prompt"] = result.revised[index]
            data.append(item)
        response: dict[str, Any] = {"created": int(time.time()), "data": data,
                                    "session_id": session_id, "run_id": run_id,
                                    "artifacts": [row["id"] for row in saved]}
        if result.openai_usage:
            response["usage"] = result.openai_usage
        return response

    def _image_request(self, body: dict[str, Any], inputs: list[tuple[bytes, str]] | None,
                       mask: bytes | None = None) -> ImageRequest:

        request: ImageRequest = validate(body, ImageRequest)
        if request.size not in (None, "auto") and not re.fullmatch(r"\d{2,5}x\d{2,5}",
                                                                   request.size or ""):
            raise InvalidRequest("The field 'size' must look like 1024x1024 (or be 'auto').",
                                 param="size")
        if inputs is not None and not inputs:
            raise InvalidRequest("Send at least one image to edit (the field 'image').",
                                 param="image")
        for name, data in [("image", d) for d, _ in inputs or []] + (
                [("mask", mask)] if mask is not None else []):
            try:
                check_image(data)
            except ValueError as exc:
                raise InvalidRequest(f"The field '{name}' is not valid: {exc}.",
                                     param=name) from None
        return request

    def _image_cost(self, model: ModelInfo, request: ImageRequest, result: Images) -> Any:
        if result.openai_usage and "output_tokens" in result.openai_usage:
            details = result.openai_usage.get("input_tokens_details") or {}
            text = int(details.get("text_tokens", result.openai_usage.get("input_tokens", 0)))
            return image_token_cost(model, text_tokens=text,
                                    image_tokens=int(details.get("image_tokens", 0)),
                                    output_tokens=int(result.openai_usage["output_tokens"]))
        if result.usage is not None:
            return token_cost(model, result.usage)
        quality = request.quality or ("standard" if model.id.startswith("dall-e") else "medium")
        quality = "medium" if quality == "auto" else quality
        size = request.size if request.size not in (None, "auto") else "1024x1024"
        return image_cost(model, size=size or "1024x1024", quality=quality,
                          count=len(result.files))

    async def _openai_images(self, adapter: Any, key: ProviderKey | None, model: ModelInfo,
                             body: dict[str, Any], request: ImageRequest,
                             inputs: list[tuple[bytes, str]] | None, mask: bytes | None,
                             timeout: float) -> Images:
        upstream = {k: v for k, v in body.items() if k not in CLASSROOM_FIELDS}
        upstream["model"] = model.vendor_model
        upstream.pop("response_format", None)
        if model.vendor_model.startswith("dall-e"):
            upstream["response_format"] = "b64_json"
            if request.style in ("vivid", "natural"):
                upstream["style"] = request.style
        else:
            upstream["prompt"] = styled(request.prompt, request.style)
        if inputs is None:
            answer = await adapter.images(key, upstream, timeout)
        else:
            fields = {k: str(v) for k, v in upstream.items()}
            name = "image[]" if len(inputs) > 1 else "image"
            files = [(name, (f"image{i}.png", data, mime)) for i, (data, mime) in enumerate(inputs)]
            if mask is not None:
                files.append(("mask", ("mask.png", mask, "image/png")))
            answer = await adapter.image_edit(key, fields, files, timeout)
        found: list[tuple[bytes, str]] = []
        for item in answer.get("data") or []:
            if item.get("b64_json"):
                found.append((base64.b64decode(item["b64_json"]), "image/png"))
            elif item.get("url"):
                response = await adapter.http.send("GET", item["url"], timeout=timeout)
                found.append((response.content, response.headers.get("content-type",
                                                                      "image/png")))
        return Images(found, openai_usage=answer.get("usage"),
                      revised=[i.get("revised_prompt") for i in answer.get("data") or []])

    async def _gemini_images(self, adapter: Any, key: ProviderKey | None, model: ModelInfo,
                             request: ImageRequest, inputs: list[tuple[bytes, str]] | None,
                             timeout: float) -> Images:
        """NanoBanana: the session's earlier turns, then this prompt (and its images)."""
        contents: list[dict[str, Any]] = []
        if request.session_id:
            for row in await self.artifacts.find(session_id=request.session_id,
                                                 oldest_first=True, limit=20):
                data = await self.artifacts.read_bytes(row)
                contents.append({"role": "user", "parts": [{"text": row["prompt"] or ""}]})
                contents.append({"role": "model", "parts": [{"inlineData": {
                    "mimeType": row["mime"], "data": base64.b64encode(data).decode()}}]})
        parts: list[dict[str, Any]] = [{"text": styled(request.prompt, request.style)}]
        for data, mime in inputs or []:
            encoded = base64.b64encode(data).decode()
            parts.append({"inlineData": {"mimeType": mime, "data": encoded}})
        contents.append({"role": "user", "parts": parts})
        body: dict[str, Any] = {"contents": contents,
                                "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
        files: list[tuple[bytes, str]] = []
        total = TokenUsage()
        for _ in range(request.n):
            answer = await adapter.generate(key, model.vendor_model, body, timeout)
            reason = google_format.block_reason(answer)
            images = google_format.images_of(answer)
            if reason and not images:
                raise ContentBlocked(reason)
            files += [(base64.b64decode(data), mime) for mime, data in images]
            usage = google_format.usage_from_gemini(answer.get("usageMetadata"))
            total = TokenUsage(total.prompt_tokens + usage.prompt_tokens,
                          total.completion_tokens + usage.completion_tokens,
                          total.cached_tokens + usage.cached_tokens,
                          total.reasoning_tokens + usage.reasoning_tokens)
        if not files:
            raise ContentBlocked("Google answered without an image. Try rewording the prompt.")
        return Images(files, usage=total)

    # -- speech ------------------------------------------------------------------------------------

    async def speech(self, identity: Identity, body: dict[str, Any], *,
                     source: str) -> tuple[bytes, str, dict[str, Any]]:

        caller = Caller(identity, source, "openai")
        text = body.get("input") if isinstance(body.get("input"), str) else None
        request, model, run_id = await self._resolve(
            caller, body, "speech", text, lambda: validate(body, SpeechRequest))
        adapter = self.adapter(model)
        timeout = self.settings.speech_timeout_seconds

        async def attempt(key: ProviderKey | None, stack: AsyncExitStack) -> tuple[bytes, str, int]:
            if model.provider == "openai":
                upstream = {k: v for k, v in body.items() if k not in CLASSROOM_FIELDS}
                upstream.update(model=model.vendor_model, voice=request.voice or "alloy")
                audio, mime = await adapter.speech(key, upstream, timeout)
                return audio, mime, len(request.input)
            if model.provider == "elevenlabs":
                voice_id = await self._eleven_voice(adapter, key, request.voice, timeout)
                result: tuple[bytes, str, int] = await adapter.speech(
                    key, voice_id=voice_id, text=request.input, model=model.vendor_model,
                    voice_settings=request.voice_settings,
                    response_format=request.response_format, timeout=timeout)
                return result
            await adapter.media_latency()
            return mock_media.wav(request.input, request.voice or "mock"), "audio/wav", \
                len(request.input)

        saved: dict[str, Any] = {}

        async def meter(result: tuple[bytes, str, int]) -> Metered:
            audio, mime, characters = result
            saved.update(await self.artifacts.save(NewArtifact(
                identity.name, identity.tenant, mime.split(";")[0], audio, model.id,
                request.input, run_id, meta={"voice": request.voice, "characters": characters},
            )))
            return Metered(speech_cost(model, characters), None,
                           f"[{characters} characters spoken]", units={"characters": characters},
                           priced_as=model.priced_as)

        estimate = CallEstimate(0, 0, speech_cost(model, len(request.input)).micro_usd)
        (audio, mime, _), _ = await self.calls.once(caller, model, run_id, estimate, attempt,
                                                    meter)
        return audio, mime, {"run_id": run_id, "artifact_id": saved.get("id")}

    async def _eleven_voice(self, adapter: Any, key: ProviderKey | None, voice: str | None,
                            timeout: float) -> str:
        """A voice id from an id or a name (names looked up in the key's voice list)."""
        if not voice:
            raise InvalidRequest("ElevenLabs needs a 'voice': a voice id or name from "
                                 "GET /api/voices?provider=elevenlabs.", param="voice")
        if len(voice) >= 20 and voice.isalnum():
            return voice
        cache_key = key.name if key else "-"
        cached = self._voice_ids.get(cache_key)
        if cached is None or cached[0] < time.monotonic():
            voices = await adapter.voices(key, timeout)
            cached = (time.monotonic() + 600, {v["name"].lower(): v["id"] for v in voices})
            self._voice_ids[cache_key] = cached
        found = cached[1].get(voice.lower())
        if found is None:
            raise InvalidRequest(f"ElevenLabs has no voice called '{voice}'. GET "
                                 "/api/voices?provider=elevenlabs lists them.", param="voice")
        return found

    async def voices(self, identity: Identity, provider: str) -> list[dict[str, Any]]:
        from gateway.providers.openai import VOICES

        if provider == "openai":
            return [{"id": v, "name": v, "provider": "openai"} for v in VOICES]
        if provider == "mock":
            return [{"id": v, "name": v.title(), "provider": "mock"}
                    for v in ("alto", "bass", "soprano", "tenor")]
        caller = Caller(identity)
        adapter = self.calls.registry.adapter("elevenlabs")

        async def attempt(key: ProviderKey | None, stack: AsyncExitStack) -> list[dict[str, Any]]:
            result: list[dict[str, Any]] = await adapter.voices(
                key, self.settings.speech_timeout_seconds)
            return result

        async with self.calls.attempts.run("elevenlabs", caller.who(), attempt) as outcome:
            return outcome.result
