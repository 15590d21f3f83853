"""What a reservation's token bound (gateway/pricing/tokens.py) costs per call.

Timed in-process on the calls the gateway makes: a short prompt, a 20-message
Korean conversation (its counts cached, as on every turn after the first, and with
the cache cleared), and a message with a 1024 × 768 PNG; for one model of each
family, next to the mock's word count the estimate used to be.
"""

from __future__ import annotations

import base64
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateway.edge.schemas import ChatCompletionRequest
from gateway.pricing import Catalog, tokens
from gateway.providers import mock, mock_media

KOREAN = "안녕하세요, 오늘 날씨가 정말 좋네요. 인공지능 수업에서 프롬프트를 배우고 있습니다."


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn: Callable[[], object], calls: int) -> float:
    fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def _requests() -> dict[str, ChatCompletionRequest]:
    conversation: list[dict[str, Any]] = [{"role": "system", "content": "You are a tutor."}]
    for i in range(19):
        text = f"{KOREAN} 질문 {i}: 프롬프트를 어떻게 쓰면 좋을까요? " * 3
        conversation.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    png = base64.b64encode(mock_media.png("x", 1024, 768)).decode()
    image = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}}]
    bodies = {
        "short prompt": [{"role": "user", "content": "What is the capital of France?"}],
        "20 messages (cached)": conversation,
        "one 1024x768 PNG": [{"role": "user", "content": image}],
    }
    return {label: ChatCompletionRequest.model_validate({"model": "x", "messages": messages})
            for label, messages in bodies.items()}


def run(quick: bool) -> tuple[list[dict[str, Any]], dict[str, float]]:
    catalog = Catalog.load()
    before = _rss_mib()
    start = time.perf_counter()
    tokens.warm()
    load = {"load_s": time.perf_counter() - start, "rss_mib": _rss_mib() - before}
    calls = 200 if quick else 2000
    rows = []
    for label, request in _requests().items():
        for name in ("gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "mock/echo"):
            model = catalog.get(name)
            assert model is not None
            rows.append({"prompt": label, "model": name, "us": _time(
                lambda m=model, r=request: tokens.prompt_upper_bound(m, r), calls),
                "tokens": tokens.prompt_upper_bound(model, request)})
        if label.startswith("20"):
            model = catalog.get("gpt-4o-mini")
            assert model is not None

            def cold(m: Any = model, r: ChatCompletionRequest = request) -> None:
                tokens._tiktoken_count.cache_clear()
                tokens.prompt_upper_bound(m, r)

            rows.append({"prompt": "20 messages (cache cleared)", "model": "gpt-4o-mini",
                         "us": _time(cold, max(20, calls // 10)),
                         "tokens": tokens.prompt_upper_bound(model, request)})
            rows.append({"prompt": label, "model": "old: mock word count", "us": _time(
                lambda r=request: mock.prompt_tokens(r.messages), calls),
                "tokens": mock.prompt_tokens(request.messages)})
    return rows, load
