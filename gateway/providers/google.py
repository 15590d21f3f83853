"""Google Gemini: ``generateContent``, ``streamGenerateContent?alt=sse``, embeddings and
image generation (an image model answering with ``inlineData``).

The key goes in ``x-goog-api-key``. A key's ``base_url`` is the host without the
version (``https://generativelanguage.googleapis.com``), like
``GOOGLE_GEMINI_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from gateway.keypool import ProviderKey
from gateway.providers import google_format as fmt
from gateway.providers.base import ChatCall, ChatResult, NativeCall, StreamEvent
from gateway.providers.http import (
    Streamed,
    Upstream,
    Vendor,
    VendorError,
    error_for_status,
    incomplete_stream,
)

CHAT_VERSION = "v1beta"


def parse_error(status: int, body: Any) -> VendorError:
    if isinstance(body, list) and body:  # streamed errors come as a one-element array
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        said = VendorError(str(error.get("message", "")), error.get("status"))
        for detail in error.get("details") or []:
            if str(detail.get("@type", "")).endswith("RetryInfo"):
                delay = str(detail.get("retryDelay", "")).rstrip("s")
                try:
                    said.retry_after = float(delay)
                except ValueError:
                    pass
            if detail.get("reason") in ("API_KEY_INVALID", "API_KEY_EXPIRED"):
                said.status = 401  # Google answers a bad key with 400 INVALID_ARGUMENT
            for violation in detail.get("fieldViolations") or []:
                said.param = said.param or violation.get("field")
        return said
    return VendorError(str(body or f"HTTP {status}")[:300])


class GoogleProvider:
    id = "google"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("google", "https://generativelanguage.googleapis.com", client,
                           parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        return {"x-goog-api-key": (key.secret if key else None) or ""}

    def url(self, key: ProviderKey | None, version: str, model: str, method: str) -> str:
        base = self.http.base(key.base_url if key else None)
        return f"{base}/{version}/models/{model}:{method}"

    # -- native --------------------------------------------------------------------------

    async def native(self, call: NativeCall, method: str = "generateContent") -> ChatResult:
        response = await self.http.send(
            "POST", self.url(call.key, call.version, call.model.vendor_model, method),
            headers=self._headers(call.key), json=call.body, timeout=call.timeout,
        )
        data: dict[str, Any] = response.json()
        if method != "generateContent":
            return ChatResult(data, fmt.usage_from_gemini(data.get("usageMetadata"),
                                                          estimated=True), "")
        usage = fmt.usage_from_gemini(fmt.g(data, "usageMetadata", "usage_metadata"))
        return ChatResult(data, usage, fmt.response_text(data), blocked=fmt.block_reason(data))

    async def open_native_stream(
        self, call: NativeCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        url = self.url(call.key, call.version, call.model.vendor_model, "streamGenerateContent")
        response = await self.http.open(
            stack, "POST", url, params={"alt": "sse"}, headers=self._headers(call.key),
            json=call.body, timeout=call.timeout,
        )
        return self._pieces(response)

    async def _pieces(self, response: Streamed) -> AsyncIterator[StreamEvent]:
        ended = False
        async for batch in self.http.json_events(response):
            for event in batch:
                chunk = event.data
                if isinstance(chunk.get("error"), dict):
                    status = int(chunk["error"].get("code") or 500)
                    raise error_for_status("google", status, parse_error(status, chunk))
                meta = fmt.g(chunk, "usageMetadata", "usage_metadata")
                finished = any(fmt.g(c, "finishReason", "finish_reason")
                               for c in chunk.get("candidates") or [])
                # a prompt blocked outright ends with promptFeedback and no candidate at all
                ended = ended or finished or bool(fmt.block_reason(chunk))
                yield StreamEvent(
                    chunk, text=fmt.response_text(chunk),
                    usage=fmt.usage_from_gemini(meta, estimated=not finished) if meta else None,
                    final=bool(meta) and finished, blocked=fmt.block_reason(chunk),
                    flush=event.last,
                )
        if not ended:
            raise incomplete_stream("google")

    # -- behind the OpenAI face ---------------------------------------------------------------

    def _native_of(self, call: ChatCall) -> NativeCall:
        return NativeCall(call.model, fmt.request_to_gemini(call.request), call.key, call.timeout,
                          CHAT_VERSION)

    async def chat(self, call: ChatCall) -> ChatResult:
        result = await self.native(self._native_of(call))
        response = fmt.response_to_openai(result.response, call.model.id)
        return ChatResult(response, result.usage, result.text)

    async def open_stream(
        self, call: ChatCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        chunks = await self.open_native_stream(self._native_of(call), stack)
        return fmt.stream_to_openai(chunks, call.model.id)

    # -- embeddings and images -------------------------------------------------------------------

    async def embed(self, key: ProviderKey | None, model: str, texts: list[str],
                    dimensions: int | None, timeout: float) -> list[list[float]]:
        request: dict[str, Any] = {"model": f"models/{model}"}
        if dimensions:
            request["outputDimensionality"] = dimensions
        body = {"requests": [{**request, "content": {"parts": [{"text": t}]}} for t in texts]}
        response = await self.http.send(
            "POST", self.url(key, CHAT_VERSION, model, "batchEmbedContents"),
            headers=self._headers(key), json=body, timeout=timeout,
        )
        return [e.get("values", []) for e in response.json().get("embeddings", [])]

    async def generate(self, key: ProviderKey | None, model: str, body: dict[str, Any],
                       timeout: float) -> dict[str, Any]:
        response = await self.http.send(
            "POST", self.url(key, CHAT_VERSION, model, "generateContent"),
            headers=self._headers(key), json=body, timeout=timeout,
        )
        data: dict[str, Any] = response.json()
        return data

    async def aclose(self) -> None:
        return None
