"""Anthropic: the Messages API, natively and behind the OpenAI face.

The classroom's key goes in ``x-api-key`` with ``anthropic-version: 2023-06-01``
(the API's only stable version). Streams are server-sent events:
``message_start`` (input usage) … ``content_block_delta`` … ``message_delta``
(output usage) … ``message_stop``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from gateway.errors import ProviderUnavailable
from gateway.keypool import ProviderKey
from gateway.providers import anthropic_format as fmt
from gateway.providers.base import ChatCall, ChatResult, NativeCall, StreamEvent
from gateway.providers.http import (
    Streamed,
    Upstream,
    Vendor,
    VendorError,
    error_for_status,
    incomplete_stream,
)

API_VERSION = "2023-06-01"
STATUS_OF_TYPE = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500,
                  "timeout_error": 504}


def parse_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return VendorError(str(error.get("message", "")), error.get("type"))
    return VendorError(str(body or f"HTTP {status}")[:300])


def message_text(message: dict[str, Any]) -> str:
    return "".join(b.get("text", "") for b in message.get("content") or []
                   if b.get("type") == "text")


class AnthropicProvider:
    id = "anthropic"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("anthropic", "https://api.anthropic.com", client, parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        return {"x-api-key": (key.secret if key else None) or "", "anthropic-version": API_VERSION,
                "content-type": "application/json"}

    def _url(self, key: ProviderKey | None) -> str:
        return self.http.base(key.base_url if key else None) + "/v1/messages"

    # -- native --------------------------------------------------------------------------

    async def native(self, call: NativeCall) -> ChatResult:
        body = {**call.body, "model": call.model.vendor_model, "stream": False}
        response = await self.http.send(
            "POST", self._url(call.key), headers=self._headers(call.key), json=body,
            timeout=call.timeout,
        )
        message = response.json()
        return ChatResult(message, fmt.usage_from_anthropic(message.get("usage")),
                          message_text(message))

    async def open_native_stream(
        self, call: NativeCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        body = {**call.body, "model": call.model.vendor_model, "stream": True}
        response = await self.http.open(
            stack, "POST", self._url(call.key), headers=self._headers(call.key), json=body,
            timeout=call.timeout,
        )
        return self._pieces(response)

    async def _pieces(self, response: Streamed) -> AsyncIterator[StreamEvent]:
        usage: dict[str, Any] = {}
        finished = False
        async for batch in self.http.json_events(response):
            for item in batch:
                event = item.data
                kind = event.get("type") or item.name
                finished = finished or kind in ("message_delta", "message_stop")
                if kind == "error":
                    error = event.get("error") or {}
                    status = STATUS_OF_TYPE.get(error.get("type", ""), 500)
                    said = VendorError(str(error.get("message", "")), error.get("type"))
                    raise error_for_status("anthropic", status, said)
                piece = StreamEvent(event, event=kind, flush=item.last)
                if kind == "message_start":
                    usage = dict((event.get("message") or {}).get("usage") or {})
                    piece.usage = fmt.usage_from_anthropic(usage, estimated=True)
                elif kind == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta":
                        piece.text = delta.get("text", "")
                elif kind == "message_delta":
                    counts = event.get("usage") or {}
                    usage.update({k: v for k, v in counts.items() if v is not None})
                    piece.usage, piece.final = fmt.usage_from_anthropic(usage), True
                yield piece
        if not usage:
            raise ProviderUnavailable("Anthropic ended the stream before it began. Try again.")
        if not finished:
            raise incomplete_stream("anthropic")

    # -- behind the OpenAI face ---------------------------------------------------------------

    def _native_of(self, call: ChatCall) -> NativeCall:
        body = fmt.request_to_anthropic(call.request, call.model.vendor_model,
                                        call.model.max_output_tokens)
        return NativeCall(call.model, body, call.key, call.timeout)

    async def chat(self, call: ChatCall) -> ChatResult:
        result = await self.native(self._native_of(call))
        response = fmt.response_to_openai(result.response, call.model.id)
        return ChatResult(response, result.usage, result.text)

    async def open_stream(
        self, call: ChatCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        events = await self.open_native_stream(self._native_of(call), stack)
        return fmt.stream_to_openai(events, call.model.id)

    async def aclose(self) -> None:
        return None
