"""The ``mock`` provider: offline, free, deterministic, and as slow as you ask.

A product feature, not a test double: offline classrooms, demos and load
tests use it. ``mock/echo`` answers with the last user message, ``mock/lorem``
with placeholder text chosen by a hash of the conversation. Time to first
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
from typing import Any

from gateway.pricing import Usage
from gateway.providers.base import ChatCall, ChatResult, usage_to_openai
from gateway.schemas import ChatMessage, content_text, last_user_text

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

    def __init__(self, ttft_ms: float = 0.0, tokens_per_second: float = 0.0) -> None:
        self.ttft = ttft_ms / 1000
        self.tps = tokens_per_second

    def _answer(self, call: ChatCall) -> tuple[list[str], str]:
        request = call.request
        if call.model.id == "mock/lorem":
            text = lorem_text(request.messages, request.output_limit)
        else:
            text = last_user_text(request.messages)
        pieces = TOKEN.findall(text)
        limit = request.output_limit
        if limit is not None and len(pieces) > limit:
            return pieces[:limit], "length"
        return pieces, "stop"

    def _usage(self, call: ChatCall, completion: int) -> Usage:
        return Usage(prompt_tokens=prompt_tokens(call.request.messages), completion_tokens=completion)

    async def chat(self, call: ChatCall) -> ChatResult:
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

    async def stream(self, call: ChatCall) -> AsyncIterator[dict[str, Any]]:
        pieces, finish = self._answer(call)
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
        usage = self._usage(call, len(pieces))
        yield {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": call.model.id,
            "system_fingerprint": "mock",
            "choices": [],
            "usage": usage_to_openai(usage),
        }

    async def aclose(self) -> None:
        return None
