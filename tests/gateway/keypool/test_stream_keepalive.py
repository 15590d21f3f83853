"""A stream queued for a key hears keep-alive comments until its turn, then its answer."""

from __future__ import annotations

import asyncio
import json

import httpx


def test_queued_stream_gets_keepalives_then_its_reply(start_gateway, tokens, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text('[[mock]]\nname = "one-slot"\nconcurrency_limit = 1\n')
    server = start_gateway(
        CLASSROOM_KEYS_FILE=str(keys), CLASSROOM_MOCK_TOKENS_PER_SECOND="20",
        CLASSROOM_STREAM_KEEPALIVE_SECONDS="0.2",
    )

    async def scenario() -> tuple[list[str], str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            holder_started = asyncio.Event()

            async def holder() -> None:
                body = {"model": "mock/lorem", "stream": True,
                        "messages": [{"role": "user", "content": "a long story"}]}
                async with client.stream("POST", "/v1/chat/completions", json=body,
                                         headers={"Authorization": f"Bearer {tokens['student_a']}"}) as r:
                    async for line in r.aiter_lines():
                        if '"content"' in line:
                            holder_started.set()

            hold = asyncio.create_task(holder())
            await asyncio.wait_for(holder_started.wait(), 30)
            lines: list[str] = []
            body = {"model": "mock/echo", "stream": True,
                    "messages": [{"role": "user", "content": "my turn"}]}
            async with client.stream("POST", "/v1/chat/completions", json=body,
                                     headers={"Authorization": f"Bearer {tokens['student_b']}"}) as r:
                status = r.status_code
                async for line in r.aiter_lines():
                    if line:
                        lines.append(line)
            await hold
            return lines, str(status)

    lines, status = asyncio.run(scenario())
    assert status == "200"
    comments = [line for line in lines if line.startswith(":")]
    assert comments and comments[0] == ": waiting for your turn"
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    assert all(line.startswith(":") for line in lines[:first_data])
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in lines if line.startswith("data: {") and '"choices":[{' in line
    )
    assert text == "my turn" and lines[-1] == "data: [DONE]"
