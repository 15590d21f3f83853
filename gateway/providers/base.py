"""What a provider adapter is.

The gateway's lingua franca is OpenAI's chat format: an adapter receives a
validated OpenAI-style request and returns an OpenAI ``chat.completion`` (or
yields ``chat.completion.chunk`` dicts, the last carrying ``usage``). Adapters
for other vendors translate at their own edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.pricing import ModelInfo, Usage
from gateway.schemas import ChatCompletionRequest


@dataclass
class ChatCall:
    model: ModelInfo
    request: ChatCompletionRequest
    api_key: str | None = None
    base_url: str | None = None


@dataclass
class ChatResult:
    response: dict[str, Any]
    usage: Usage
    text: str


def usage_from_openai(usage: dict[str, Any] | None, *, estimated: bool = False) -> Usage:
    if not usage:
        return Usage(estimated=True)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        estimated=estimated,
    )


def usage_to_openai(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


class ChatProvider(Protocol):
    id: str

    async def chat(self, call: ChatCall) -> ChatResult: ...

    def stream(self, call: ChatCall) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...
