"""A key's RPM and TPM limits hold as the vendor counts them, from the fake vendor's own
request log: the time each request arrived there and the tokens it reported.

The pool's windows are exact on its own clock at the grant; a request reaches the vendor
a little later, by a delay that varies (``benchmarks/dispatch_jitter.py``), so the pool
keeps each grant for a margin past its window. A real gateway in process with a short
window (``build_services(window=...)``, the pool's constructor parameter), real time, the
vendor in its own process: many calls at once on one OpenAI key, through chat completions
(streamed and not), embeddings and speech, and no window of the limit's length at the
vendor holds more than the limit. With no margin both tests fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gateway.composition import build_services
from gateway.config.settings import Settings
from gateway.edge.app import create_asgi
from tests.gateway.providers.conftest import Fakes

WINDOW = 1.0  # seconds: the vendors' minute, shortened


@contextmanager
def gateway(settings: Settings, tmp_path: Path, fakes: Fakes, limits: str
            ) -> Iterator[TestClient]:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[openai]]\nname = "only"\napi_key = "sk-fake-limits-0001"\n'
                    f'base_url = "{fakes.base("openai")}/v1"\n{limits}\n')
    settings = settings.model_copy(update={"keys_file": keys, "queue_max_wait_s": 60.0})
    with TestClient(create_asgi(settings, build_services(settings, window=WINDOW))) as client:
        yield client


def at_once(client: TestClient, token: str, calls: list[tuple[str, dict[str, Any]]]
            ) -> list[int]:
    """Every call (path, body) sent together, one thread each; their statuses."""
    def call(path_and_body: tuple[str, dict[str, Any]]) -> int:
        path, body = path_and_body
        return client.post(path, json=body,
                           headers={"Authorization": f"Bearer {token}"}).status_code

    with ThreadPoolExecutor(len(calls)) as threads:
        return list(threads.map(call, calls))


def chat(i: int, **body: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": "gpt-4o-mini", "stream": i % 2 == 1, **body}


def received(fakes: Fakes, path: str = "") -> list[dict[str, Any]]:
    """What the vendor received (at ``path``, when given), in order of arrival."""
    requests = [r for r in fakes.requests("openai") if r["path"].endswith(path)]
    return sorted(requests, key=lambda r: r["time"])


def most_in_a_window(times: list[float], weight: Callable[[int], int] = lambda _: 1) -> int:
    """The largest total ``weight`` of arrivals within any window ``[t, t + WINDOW)``."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(weight(j) for j in range(i, len(times))
                             if times[j] < start + WINDOW))
    return best


DOORS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "a few words"}),
    ("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "hello"}),
]


def test_rpm_at_the_vendor_never_exceeds_the_limit(gateway_settings, tmp_path, fakes, tokens):
    """Chat (streamed and not), embeddings and speech share the key's requests."""
    limit, calls = 4, 14
    with gateway(gateway_settings, tmp_path, fakes, f"rpm_limit = {limit}") as client:
        statuses = at_once(client, tokens["teacher_a"], [
            DOORS[i % 3] if i % 3 < 2 else
            chat(i, max_tokens=5, messages=[{"role": "user", "content": f"call {i}"}])
            for i in range(calls)])
    assert statuses == [200] * calls
    seen = received(fakes)
    assert {r["path"] for r in seen} == {
        "/v1/chat/completions", "/v1/embeddings", "/v1/audio/speech"}
    times = [r["time"] for r in seen]
    assert len(times) == calls  # every request the vendor saw is counted, retries included
    # the limit was reached (the calls queued), and never passed, at the vendor
    assert most_in_a_window(times) == limit
    assert all(later - first >= WINDOW for first, later in zip(times, times[limit:], strict=False))


def test_tpm_at_the_vendor_never_exceeds_the_limit(gateway_settings, tmp_path, fakes, tokens):
    limit, calls = 300, 20
    with gateway(gateway_settings, tmp_path, fakes, f"tpm_limit = {limit}") as client:
        statuses = at_once(client, tokens["admin"], [
            chat(i, max_tokens=30, stream_options={"include_usage": True} if i % 2 else None,
                 messages=[{"role": "user", "content": f"[[words n=30]] tpm {i}"}])
            for i in range(calls)])
    assert statuses == [200] * calls
    chats = received(fakes, "/v1/chat/completions")
    assert len(chats) == calls
    used = [r["usage"]["total_tokens"] for r in chats]
    assert min(used) > 0
    most = most_in_a_window([r["time"] for r in chats], lambda j: used[j])
    # the calls had to wait for the window (all of them would be 20 × 41 tokens) ...
    assert sum(used) > 2 * limit
    # ... and no window at the vendor took more than the limit
    assert limit - max(used) < most <= limit
