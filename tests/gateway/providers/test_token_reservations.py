"""A call is reserved by its real worst case, not by a word count: a Korean prompt that
the old estimate (the mock's word regex, 13 tokens for the issue's sentence) let
through a small ``tokens_per_day`` is refused before any vendor sees it, on the
OpenAI-compatible and the Anthropic faces; with room, it is sent as it came."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from gateway.pricing import tokens as T
from tests.gateway.providers.conftest import Fakes, keys_toml

KOREAN = "안녕하세요, 오늘 날씨가 정말 좋네요. 인공지능 수업에서 프롬프트를 배우고 있습니다."
MAX_TOKENS = 10


def limit(client: TestClient, tokens: dict[str, str], tokens_per_day: int) -> None:
    response = client.put("/api/overrides/stu_a",
                          headers={"Authorization": f"Bearer {tokens['admin']}"},
                          json={"tenant": "school_a", "tokens_per_day": tokens_per_day})
    assert response.status_code == 200, response.text


def test_korean_prompt_is_reserved_by_its_real_size(
        fakes: Fakes, gateway_with_keys: Callable[[str], TestClient],
        tokens: dict[str, str]) -> None:
    client = gateway_with_keys(keys_toml(fakes))
    student = {"Authorization": f"Bearer {tokens['student_a']}"}
    # gpt-4o-mini counts with o200k_base; with OpenAI's chat framing (3 per message,
    # 3 for the reply) the prompt is 32 tokens, the worst case 32 + max_tokens.
    real_prompt = len(T.encoding("o200k_base").encode_ordinary(KOREAN)) + 3 + 1 + 3
    old_estimate = 3 + 4 + 13
    limit(client, tokens, real_prompt + MAX_TOKENS - 1)
    assert old_estimate + MAX_TOKENS <= real_prompt + MAX_TOKENS - 1  # the old one fitted
    openai_body = {"model": "gpt-4o-mini", "max_tokens": MAX_TOKENS,
                   "messages": [{"role": "user", "content": KOREAN}]}
    refused = client.post("/v1/chat/completions", headers=student, json=openai_body)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert "tokens" in refused.json()["error"]["message"]

    # Claude's tokenizer is not offline: the bound is the text's UTF-8 bytes, so even
    # room for cl100k's 45 tokens of this sentence is not room enough.
    cl100k = len(T.encoding("cl100k_base").encode_ordinary(KOREAN))
    assert cl100k == 45
    limit(client, tokens, cl100k + 8 + MAX_TOKENS)
    anthropic_body = {"model": "claude-haiku-4-5", "max_tokens": MAX_TOKENS,
                      "messages": [{"role": "user", "content": KOREAN}]}
    refused = client.post("/anthropic/v1/messages", headers=student, json=anthropic_body)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert fakes.requests("openai") == [] and fakes.requests("anthropic") == []

    limit(client, tokens, 10_000)
    served = client.post("/v1/chat/completions", headers=student, json=openai_body)
    assert served.status_code == 200, served.text
    sent = fakes.requests("openai")
    assert len(sent) == 1 and sent[0]["json"]["messages"][0]["content"] == KOREAN
    served = client.post("/anthropic/v1/messages", headers=student, json=anthropic_body)
    assert served.status_code == 200, served.text
    assert len(fakes.requests("anthropic")) == 1
    history = client.get("/api/history", headers=student, params={"limit": 10}).json()["items"]
    statuses = sorted(run["status"] for run in history)
    assert statuses.count("refused") + statuses.count("error") >= 2, statuses
