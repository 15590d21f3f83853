"""What a provider adapter is.

The gateway's lingua franca is OpenAI's chat format: a chat adapter receives a
validated OpenAI-style request and returns an OpenAI ``chat.completion``, or
opens a stream of ``chat.completion.chunk`` pieces whose last one carries
``usage``. Adapters for other vendors translate at their own edge, and also
offer their vendor's native call unchanged (for the native faces).

An adapter makes exactly one attempt with the key it is given; retries, key
choice and metering belong to the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.edge.schemas import ChatCompletionRequest
from gateway.keypool import ProviderKey
from gateway.pricing import ModelInfo, TokenUsage


@dataclass
class ChatCall:
    model: ModelInfo
    request: ChatCompletionRequest
    key: ProviderKey | None = None
    timeout: float = 120.0
    body: dict[str, Any] | None = None  # the caller's own JSON, passed through where it can be

    def openai_body(self) -> dict[str, Any]:
        body = dict(self.body) if self.body is not None else self.request.model_dump(
            exclude_none=True
        )
        body["model"] = self.model.vendor_model
        return body


@dataclass
class NativeCall:
    """A vendor-native request body, sent to that same vendor unchanged."""

    model: ModelInfo
    body: dict[str, Any]
    key: ProviderKey | None = None
    timeout: float = 120.0
    version: str = "v1beta"  # Google's API version, as the caller used it


@dataclass
class ChatResult:
    response: dict[str, Any]
    usage: TokenUsage
    text: str
    blocked: str | None = None  # a safety block the vendor answered with 200, in words
    # The vendor's own JSON of ``response``, for a caller of the same format: sent on as
    # it came instead of serialised again.
    raw: bytes | None = None


@dataclass
class StreamEvent:
    """One event of a stream, with what the pipeline meters from it."""

    payload: dict[str, Any]
    event: str | None = None  # SSE event name (Anthropic)
    text: str = ""
    usage: TokenUsage | None = None
    final: bool = False  # ``usage`` is the provider's final count
    blocked: str | None = None
    # The vendor's own JSON text of ``payload`` when the caller's face is the vendor's
    # format too, so the frame can pass it on as it came instead of serialising it again.
    raw: str | None = None
    # False when more pieces came in the same network read: the pipeline sends what
    # arrived together in one write to the caller.
    flush: bool = True


def usage_from_openai(usage: dict[str, Any] | None, *, estimated: bool = False) -> TokenUsage:
    if not usage:
        return TokenUsage(estimated=True)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        estimated=estimated,
    )


def usage_to_openai(usage: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def openai_text(response: dict[str, Any]) -> str:
    choices = response.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


class ChatProvider(Protocol):
    id: str

    async def chat(self, call: ChatCall) -> ChatResult: ...

    async def open_stream(
        self, call: ChatCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        """Send the request and check the answer's status (raising before any byte reaches
        the caller, so the attempt can be retried); the pieces follow."""
        ...

    async def aclose(self) -> None: ...


class NativeProvider(Protocol):
    id: str

    async def native(self, call: NativeCall) -> ChatResult: ...

    async def open_native_stream(
        self, call: NativeCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]: ...


# -- asynchronous media jobs (video, Midjourney-style) ---------------------------------------


@dataclass
class JobSpec:
    kind: str  # video, midjourney
    model: ModelInfo
    prompt: str
    params: dict[str, Any]


@dataclass
class TaskState:
    status: str  # queued, running, succeeded, failed
    progress: float | None = None  # 0..1 when the vendor reports it
    urls: list[str] | None = None  # results to download, the main one first
    error: str | None = None
    seconds: float | None = None  # a video's length


class JobProvider(Protocol):
    id: str

    async def submit(self, key: ProviderKey | None, spec: JobSpec, timeout: float) -> str:
        """Create the vendor's task; its id (what :meth:`poll` needs)."""
        ...

    async def poll(self, key: ProviderKey | None, task_id: str, spec: JobSpec,
                   timeout: float) -> TaskState: ...

    async def download(self, key: ProviderKey | None, url: str,
                       timeout: float) -> tuple[bytes, str]: ...
