"""OpenAI (and any OpenAI-compatible endpoint, such as Azure OpenAI): REST.

Chat bodies pass through unchanged (tools, response formats and newer options
reach the vendor as the caller wrote them), except that a stream always asks
for ``stream_options.include_usage`` so that every stream is metered from the
vendor's own count. A key's ``base_url`` includes the version (``…/v1``), like
``OPENAI_BASE_URL``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson

from gateway.keypool import ProviderKey
from gateway.providers.base import (
    ChatCall,
    ChatResult,
    StreamEvent,
    openai_text,
    usage_from_openai,
)
from gateway.providers.http import (
    Streamed,
    Upstream,
    Vendor,
    VendorError,
    error_for_status,
    incomplete_stream,
)

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
          "verse")


def parse_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return VendorError(str(error.get("message", "")), error.get("code") or error.get("type"),
                           error.get("param"))
    return VendorError(str(body or f"HTTP {status}")[:300])


class OpenAIProvider:
    id = "openai"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("openai", "https://api.openai.com/v1", client, parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(key.secret if key else None) or ''}"}

    def url(self, key: ProviderKey | None, path: str) -> str:
        return self.http.base(key.base_url if key else None) + path

    async def post_json(
        self, key: ProviderKey | None, path: str, body: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        response = await self.http.send("POST", self.url(key, path), headers=self._headers(key),
                                         json=body, timeout=timeout)
        data: dict[str, Any] = response.json()
        return data

    # -- chat -------------------------------------------------------------------------

    async def chat(self, call: ChatCall) -> ChatResult:
        body = call.openai_body()
        body.pop("stream_options", None)
        body["stream"] = False
        reply = await self.http.send("POST", self.url(call.key, "/chat/completions"),
                                     headers=self._headers(call.key), json=body,
                                     timeout=call.timeout)
        content = reply.content
        response: dict[str, Any] = orjson.loads(content)
        return ChatResult(response, usage_from_openai(response.get("usage")), openai_text(response),
                          raw=content if content[:1] == b"{" else None)  # UTF-8, as it came

    async def open_stream(
        self, call: ChatCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        body = call.openai_body()
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        response = await self.http.open(
            stack, "POST", self.url(call.key, "/chat/completions"),
            headers=self._headers(call.key), json=body, timeout=call.timeout,
        )
        return self._pieces(response)

    async def _pieces(self, response: Streamed) -> AsyncIterator[StreamEvent]:
        finished = False  # some compatible servers end after the finish_reason, without [DONE]
        async for batch in self.http.json_events(response, done="[DONE]"):
            for event in batch:
                chunk = event.data
                choices = chunk.get("choices") or ()
                finished = finished or any(c.get("finish_reason") for c in choices)
                if isinstance(chunk.get("error"), dict):
                    code = str(chunk["error"].get("code", ""))
                    raise error_for_status("openai", int(code) if code.isdigit() else 500,
                                           parse_error(500, chunk))
                text = "".join((c.get("delta") or {}).get("content") or "" for c in choices)
                usage = usage_from_openai(chunk["usage"]) if chunk.get("usage") else None
                raw = event.text if "\n" not in event.text else None  # one SSE data line
                yield StreamEvent(chunk, text=text, usage=usage, final=usage is not None, raw=raw,
                            flush=event.last)
        if not finished:
            raise incomplete_stream("openai")

    # -- embeddings, images, speech ------------------------------------------------------------

    async def embeddings(self, key: ProviderKey | None, body: dict[str, Any],
                         timeout: float) -> dict[str, Any]:
        return await self.post_json(key, "/embeddings", body, timeout)

    async def images(self, key: ProviderKey | None, body: dict[str, Any],
                     timeout: float) -> dict[str, Any]:
        return await self.post_json(key, "/images/generations", body, timeout)

    async def image_edit(
        self, key: ProviderKey | None, fields: dict[str, str],
        files: list[tuple[str, tuple[str, bytes, str]]], timeout: float,
    ) -> dict[str, Any]:
        response = await self.http.send(
            "POST", self.url(key, "/images/edits"), headers=self._headers(key), data=fields,
            files=files, timeout=timeout,
        )
        data: dict[str, Any] = response.json()
        return data

    async def speech(self, key: ProviderKey | None, body: dict[str, Any],
                     timeout: float) -> tuple[bytes, str]:
        response = await self.http.send(
            "POST", self.url(key, "/audio/speech"), headers=self._headers(key), json=body,
            timeout=timeout,
        )
        return response.content, response.headers.get("content-type", "audio/mpeg")

    async def aclose(self) -> None:
        return None
