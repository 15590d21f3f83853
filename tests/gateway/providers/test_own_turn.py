"""A student's sixteen calls at once are served four at a time, none refused.

The shipped schools allow a student four calls at once. A loop (or the Playground)
that sends sixteen gets sixteen answers: the extra calls wait for the student's own
earlier ones, in order, with SSE keep-alives for streams. Checked from the fake
vendor's own log: every request lasts at least ``DELAY`` there, so if no more than
four were ever in flight, the k-th arrival is at least ``DELAY`` after the
(k-4)-th.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import TOKENS
from tests.gateway.providers.conftest import FAST, keys_toml

DELAY = 0.4
CALLS = 16


def test_sixteen_calls_at_once_wait_their_turn_four_at_a_time(
        start_gateway: Any, fakes: Any, tmp_path: Any) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml(fakes))
    gateway = start_gateway(CLASSROOM_KEYS_FILE=str(keys),
                            CLASSROOM_STREAM_KEEPALIVE_SECONDS="0.1", **FAST)
    fakes.fail("openai", times=CALLS, status=200, path="chat", delay=DELAY)
    headers = {"Authorization": f"Bearer {TOKENS['student_a'][0]}"}

    async def scenario() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
            async def one(i: int) -> tuple[int, str]:
                body = {"model": "gpt-4o-mini", "stream": i % 2 == 0,
                        "messages": [{"role": "user", "content": f"call {i}"}]}
                response = await client.post("/v1/chat/completions", json=body,
                                             headers=headers)
                return response.status_code, response.text

            return await asyncio.gather(*(one(i) for i in range(CALLS)))

    answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [200] * CALLS, answers
    arrivals = sorted(r["time"] for r in fakes.requests("openai"))
    assert len(arrivals) == CALLS
    for k in range(4, CALLS):
        assert arrivals[k] - arrivals[k - 4] >= DELAY * 0.99, (k, arrivals)
    streamed = [text for i, (_, text) in enumerate(answers) if i % 2 == 0]
    waited = [text for text in streamed if text.startswith(": waiting for your turn")]
    assert waited, "a stream that waited for its turn heard keep-alives"
    assert all(text.rstrip().endswith("data: [DONE]") for text in streamed)
    me = httpx.get(f"{gateway.url}/api/me", headers=headers).json()["quota"]
    assert me["concurrent"] == {"running": 0, "waiting": 0, "limit": 4}
    assert me["requests_today"]["used"] == CALLS and me["requests_today"]["reserved"] == 0
