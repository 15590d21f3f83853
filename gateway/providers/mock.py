"""The ``mock`` provider: offline, free, deterministic, and as slow as you ask.

A product feature, not a test double: offline classrooms, demos and load
tests use it. ``mock/echo`` answers with the last user message, ``mock/lorem``
with placeholder text chosen by a hash of the conversation. Offered ``tools``,
both call them by the rule of :mod:`gateway.providers.mock_tools` (the tool the
prompt names, with arguments taken from the prompt) and answer from the results. Time to first
token and tokens per second come from settings so the mock can behave like a
real model.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from gateway.edge.schemas import ChatMessage, content_text, last_user_text
from gateway.keypool import ProviderKey
from gateway.pricing import TokenUsage
from gateway.providers.base import (
    ChatCall,
    ChatResult,
    JobSpec,
    StreamEvent,
    TaskState,
    usage_to_openai,
)
from gateway.providers.mock_media import MockJobs
from gateway.providers.mock_tools import MockCall, planned_calls, tool_results_answer

TOKEN = re.compile(r"\s*[\w']+|\s*[^\w\s]")
LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur excepteur sint occaecat "
    "cupidatat non proident sunt in culpa qui officia deserunt mollit anim id est laborum"
).split()


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def prompt_tokens(messages: list[ChatMessage]) -> int:
    # Roughly what chat formats add: a few tokens of framing per message.
    return 3 + sum(4 + count_tokens(content_text(m.content)) for m in messages)


def json_tokens(value: Any) -> int:
    """The mock's count of every text in a JSON value (inline image data skipped)."""
    if isinstance(value, str):
        return count_tokens(value) if len(value) < 50_000 else 0
    if isinstance(value, dict):
        return sum(json_tokens(v) for k, v in value.items() if k not in ("data", "url"))
    if isinstance(value, list):
        return sum(json_tokens(v) for v in value)
    return 0


def lorem_text(messages: list[ChatMessage], limit: int | None) -> str:
    digest = hashlib.sha256(
        "\n".join(f"{m.role}:{content_text(m.content)}" for m in messages).encode()
    ).digest()
    words = 24 + digest[0] % 40
    sentences, current = [], []
    for i in range(words):
        current.append(LOREM[digest[i % len(digest)] * (i + 1) % len(LOREM)])
        if len(current) >= 6 + digest[(i + 7) % len(digest)] % 8 or i == words - 1:
            sentence = " ".join(current)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
            current = []
    return " ".join(sentences)


class MockProvider:
    id = "mock"

    def __init__(
        self, ttft_ms: float = 0.0, tokens_per_second: float = 0.0, media_ms: float = 0.0,
        job_seconds: float = 0.0,
    ) -> None:
        self.ttft = ttft_ms / 1000
        self.tps = tokens_per_second
        self.media_delay = media_ms / 1000
        self.jobs = MockJobs(job_seconds)

    async def media_latency(self) -> None:
        """How long an embedding, image or speech call of the mock takes."""
        if self.media_delay:
            await asyncio.sleep(self.media_delay)

    async def submit(self, key: ProviderKey | None, spec: JobSpec, timeout: float) -> str:
        return await self.jobs.submit(key, spec, timeout)

    async def poll(self, key: ProviderKey | None, task_id: str, spec: JobSpec,
                   timeout: float) -> TaskState:
        return await self.jobs.poll(key, task_id, spec, timeout)

    async def download(self, key: ProviderKey | None, url: str,
                       timeout: float) -> tuple[bytes, str]:
        return await self.jobs.download(key, url, timeout)

    def _answer(self, call: ChatCall) -> tuple[list[str], str]:
        request = call.request
        from_tools = tool_results_answer(request) if (request.model_extra or {}).get(
            "tools") else None
        if from_tools is not None:
            text = from_tools
        elif call.model.id == "mock/lorem":
            text = lorem_text(request.messages, request.output_limit)
        else:
            text = last_user_text(request.messages)
        pieces = TOKEN.findall(text)
        limit = request.output_limit
        if limit is not None and len(pieces) > limit:
            return pieces[:limit], "length"
        return pieces, "stop"

    def _usage(self, call: ChatCall, completion: int) -> TokenUsage:
        return TokenUsage(prompt_tokens=prompt_tokens(call.request.messages),
                     completion_tokens=completion)

    @staticmethod
    def _call_tokens(calls: list[MockCall]) -> int:
        return sum(count_tokens(c.name) + count_tokens(c.arguments) for c in calls)

    async def chat(self, call: ChatCall) -> ChatResult:
        calls = planned_calls(call.request)
        if calls:
            return self._tool_result(call, calls)
        pieces, finish = self._answer(call)
        delay = self.ttft + (len(pieces) / self.tps if self.tps else 0)
        if delay:
            await asyncio.sleep(delay)
        text = "".join(pieces).strip()
        usage = self._usage(call, len(pieces))
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
            for i in range(call.request.n or 1)
        ]
        response = {
            "id": f"chatcmpl-mock{uuid.uuid4().hex[:20]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model.id,
            "choices": choices,
            "usage": usage_to_openai(usage),
            "system_fingerprint": "mock",
        }
        return ChatResult(response=response, usage=usage, text=text)

    def _tool_result(self, call: ChatCall, calls: list[MockCall]) -> ChatResult:
        usage = self._usage(call, self._call_tokens(calls))
        message = {"role": "assistant", "content": None, "refusal": None,
                   "tool_calls": [c.as_openai() for c in calls]}
        response = {
            "id": f"chatcmpl-mock{uuid.uuid4().hex[:20]}", "object": "chat.completion",
            "created": int(time.time()), "model": call.model.id,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls"}],
            "usage": usage_to_openai(usage), "system_fingerprint": "mock",
        }
        return ChatResult(response=response, usage=usage, text="")

    async def stream(self, call: ChatCall) -> AsyncIterator[dict[str, Any]]:
        calls = planned_calls(call.request)
        pieces, finish = ([], "tool_calls") if calls else self._answer(call)
        ident = f"chatcmpl-mock{uuid.uuid4().hex[:20]}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": call.model.id,
                "system_fingerprint": "mock",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }

        if self.ttft:
            await asyncio.sleep(self.ttft)
        yield chunk({"role": "assistant", "content": ""})
        for index, planned in enumerate(calls):  # as OpenAI streams them: head, then arguments
            yield chunk({"tool_calls": [{"index": index, "id": planned.id, "type": "function",
                                         "function": {"name": planned.name, "arguments": ""}}]})
            yield chunk({"tool_calls": [{"index": index,
                                         "function": {"arguments": planned.arguments}}]})
        interval = 1 / self.tps if self.tps else 0
        started = time.monotonic()
        for index, piece in enumerate(pieces):
            if interval:
                # Pace against the clock, not per sleep, so the rate holds under load.
                wait = started + index * interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            yield chunk({"content": piece.lstrip() if index == 0 else piece})
        yield chunk({}, finish)
        usage = self._usage(call, len(pieces) + self._call_tokens(calls))
        yield {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model.id,
            "system_fingerprint": "mock",
            "choices": [],
            "usage": usage_to_openai(usage),
        }

    async def open_stream(
        self, call: ChatCall, stack: AsyncExitStack
    ) -> AsyncIterator[StreamEvent]:
        return self._pieces(call)

    async def _pieces(self, call: ChatCall) -> AsyncIterator[StreamEvent]:
        async for chunk in self.stream(call):
            text = "".join(
                (c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or ()
            )
            usage = chunk.get("usage")
            if usage:
                yield StreamEvent(chunk, usage=self._usage(call, usage["completion_tokens"]),
                                  final=True)
            else:
                yield StreamEvent(chunk, text=text)

    async def aclose(self) -> None:
        await self.jobs.aclose()
