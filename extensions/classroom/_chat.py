"""Chat completions over the gateway: results, usage and token streams.

The gateway speaks OpenAI's chat-completions protocol, streamed as server-sent
events (``data: {chunk}`` lines ending with ``data: [DONE]``). This module turns
that stream into text deltas and one :class:`ChatResult`; the HTTP side lives in
``_client``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._exceptions import GatewayError

Messages = str | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Usage:
    """Tokens counted by the provider for one reply."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        prompt = int(data.get("prompt_tokens") or 0)
        completion = int(data.get("completion_tokens") or 0)
        return cls(prompt, completion, int(data.get("total_tokens") or prompt + completion))

    def __str__(self) -> str:
        return (
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion "
            f"= {self.total_tokens} tokens"
        )


@dataclass(frozen=True)
class ChatResult:
    """One complete reply. ``str(result)`` is the reply's text."""

    text: str
    model: str
    usage: Usage | None = None
    finish_reason: str | None = None
    #: Seconds from sending the request to the end of the reply.
    latency: float = 0.0
    #: Seconds until the first piece of text arrived (streamed replies only).
    first_token_latency: float | None = None
    id: str | None = None

    def __str__(self) -> str:
        return self.text


def normalize_messages(messages: Messages) -> list[dict[str, Any]]:
    """A bare string is one user message; anything else is copied as a list of dicts."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(message) for message in messages]


def chat_payload(
    messages: Messages, model: str, *, stream: bool, params: Mapping[str, Any]
) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "messages": normalize_messages(messages)}
    payload.update(params)
    payload["stream"] = stream
    if stream:
        options = dict(payload.get("stream_options") or {})
        options.setdefault("include_usage", True)
        payload["stream_options"] = options
    return payload


def result_from_completion(body: Mapping[str, Any], model: str, started: float) -> ChatResult:
    """The :class:`ChatResult` of a non-streamed ``chat.completion`` body."""
    choice = (body.get("choices") or [{}])[0]
    usage = body.get("usage")
    return ChatResult(
        text=(choice.get("message") or {}).get("content") or "",
        model=body.get("model") or model,
        usage=Usage.from_json(usage) if usage else None,
        finish_reason=choice.get("finish_reason"),
        latency=time.perf_counter() - started,
        id=body.get("id"),
    )


DONE = "[DONE]"


def sse_data(line: str) -> str | None:
    """The payload of a ``data:`` line of a server-sent event stream, else None."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip() or None


@dataclass
class _Accumulator:
    """Folds ``chat.completion.chunk`` events into text and one final result."""

    model: str
    url: str | None = None
    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    first_token_at: float | None = None
    id: str | None = None
    # A session's stream ends with the stored messages (``classroom.session.reply``).
    session_reply: dict[str, Any] | None = None

    def feed(self, data: str) -> str | None:
        """The text delta in one event's data, or None; raises an error sent mid-stream."""
        try:
            chunk = json.loads(data)
        except ValueError:
            return None
        if not isinstance(chunk, dict):
            return None
        if "error" in chunk:
            raise error_from_body(chunk, status=None, model=self.model, url=self.url)
        if chunk.get("object") == "classroom.session.reply":
            self.session_reply = chunk
            return None
        self.id = self.id or chunk.get("id")
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = Usage.from_json(chunk["usage"])
        delta_text = None
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta_text = (choice.get("delta") or {}).get("content") or None
        if delta_text:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.parts.append(delta_text)
        return delta_text

    def result(self) -> ChatResult:
        first = None if self.first_token_at is None else self.first_token_at - self.started
        return ChatResult(
            text="".join(self.parts),
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            latency=time.perf_counter() - self.started,
            first_token_latency=first,
            id=self.id,
        )


class ChatStream:
    """The text of a streamed reply, piece by piece.

    Iterate over it to get each new piece of text as it arrives; afterwards
    ``.result`` holds the whole reply with its ``usage`` and latency::

        stream = classroom.client.stream_chat("Tell me a story", model="mock/lorem")
        for piece in stream:
            print(piece, end="")
        print(stream.usage)

    The request is sent when iteration starts, and can be iterated once.
    """

    def __init__(
        self,
        open_response: Callable[[], AbstractContextManager[httpx.Response]],
        accumulator: _Accumulator,
    ) -> None:
        self._open = open_response
        self._acc = accumulator
        self._started = False
        self.result: ChatResult | None = None

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._started = True
        self._acc.started = time.perf_counter()
        with self._open() as response:
            done = False
            for line in response.iter_lines():
                # Read on after [DONE] to the end of the body: the gateway finishes its
                # history record then, and hanging up early would look like a dropped call.
                data = sse_data(line)
                done = done or data == DONE
                if data and not done and (delta := self._acc.feed(data)):
                    yield delta
        self.result = self._acc.result()

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._acc.parts)

    @property
    def usage(self) -> Usage | None:
        return self.result.usage if self.result else None

    @property
    def session_reply(self) -> dict[str, Any] | None:
        """For a session's stream: the stored user message, reply and new memory entries."""
        return self._acc.session_reply


class AsyncChatStream:
    """:class:`ChatStream` for ``async for``."""

    def __init__(
        self,
        open_response: Callable[[], AbstractAsyncContextManager[httpx.Response]],
        accumulator: _Accumulator,
    ) -> None:
        self._open = open_response
        self._acc = accumulator
        self._started = False
        self.result: ChatResult | None = None

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._started:
            raise RuntimeError("an AsyncChatStream can be iterated only once")
        self._started = True
        self._acc.started = time.perf_counter()
        async with self._open() as response:
            done = False
            async for line in response.aiter_lines():
                data = sse_data(line)
                done = done or data == DONE
                if data and not done and (delta := self._acc.feed(data)):
                    yield delta
        self.result = self._acc.result()

    @property
    def text(self) -> str:
        return "".join(self._acc.parts)

    @property
    def usage(self) -> Usage | None:
        return self.result.usage if self.result else None


def error_from_body(
    body: Any,
    *,
    status: int | None,
    model: str | None = None,
    url: str | None = None,
    retry_after: float | None = None,
) -> GatewayError:
    """The :class:`GatewayError` for an error response (or an error event mid-stream)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        extra = {k: v for k, v in error.items() if k not in {"message", "code"}}
        return GatewayError(
            str(error.get("message") or error.get("code")),
            code=str(error.get("code") or _code_for_status(status)),
            status=status,
            model=model,
            url=url,
            retry_after=retry_after,
            details=extra,
        )
    # Not the gateway's error shape: a proxy page, or a framework's {"detail": ...}.
    detail = body.get("detail") if isinstance(body, dict) else None
    message = detail if isinstance(detail, str) else f"HTTP {status}"
    return GatewayError(
        message,
        code=_code_for_status(status),
        status=status,
        model=model,
        url=url,
        retry_after=retry_after,
    )


def _code_for_status(status: int | None) -> str:
    if status is None:
        return "provider_error"
    if status >= 500:
        return "gateway_unavailable"
    return {401: "invalid_token", 403: "forbidden", 404: "not_found", 429: "rate_limited"}.get(
        status, "http_error"
    )
