"""A call is reserved by its real worst case, not by a word count: a Korean prompt that
the old estimate (the mock's word regex: 13 tokens for the issue's sentence) let
through a small ``tokens_per_day`` is refused before any vendor sees it, at every door
that reserves tokens (OpenAI-compatible chat, the Anthropic and Google faces,
embeddings, images); with room, the same calls reach the vendor as they were sent.
Seen from the fake vendors' own request logs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.pricing import tokens as T
from tests.gateway.providers.conftest import Fakes, keys_toml

KOREAN = "안녕하세요, 오늘 날씨가 정말 좋네요. 인공지능 수업에서 프롬프트를 배우고 있습니다."
MAX_TOKENS = 10
O200K = len(T.encoding("o200k_base").encode_ordinary(KOREAN)) if T.encoding("o200k_base") else 0
CL100K = 45  # cl100k_base's count of the sentence, checked below

# door, vendor, path, body, tokens_per_day that the old estimate fitted but the real
# worst case does not
DOORS: list[tuple[str, str, str, dict[str, Any], int]] = [
    # gpt-4o-mini counts with o200k_base: the sentence, 3 per message, 1 for the role,
    # 3 for the reply, then max_tokens; the old estimate was 3 + 4 + 13 + 10 = 30.
    ("openai chat", "openai", "/v1/chat/completions",
     {"model": "gpt-4o-mini", "max_tokens": MAX_TOKENS,
      "messages": [{"role": "user", "content": KOREAN}]}, O200K + 3 + 1 + 3 + MAX_TOKENS - 1),
    # Claude's and Gemini's tokenizers are not offline: the bound is the UTF-8 bytes,
    # so even room for cl100k's 45 tokens is not room enough.
    ("anthropic face", "anthropic", "/anthropic/v1/messages",
     {"model": "claude-haiku-4-5", "max_tokens": MAX_TOKENS,
      "messages": [{"role": "user", "content": KOREAN}]}, CL100K + 16 + MAX_TOKENS),
    ("google face", "google", "/google/v1beta/models/gemini-2.5-flash:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": KOREAN}]}],
      "generationConfig": {"maxOutputTokens": MAX_TOKENS}}, CL100K + 16 + MAX_TOKENS),
    # text-embedding-3-small counts with cl100k_base: 45, where the old estimate was 13.
    ("embeddings", "openai", "/v1/embeddings",
     {"model": "text-embedding-3-small", "input": KOREAN}, CL100K - 1),
    # gpt-image-1's tokenizer is not in tiktoken's table: its prompt is bounded by bytes.
    ("images", "openai", "/v1/images/generations",
     {"model": "gpt-image-1", "prompt": KOREAN, "size": "1024x1024", "quality": "low"},
     CL100K * 2),
]


def limit(client: TestClient, tokens: dict[str, str], tokens_per_day: int) -> None:
    response = client.put("/api/overrides/stu_a",
                          headers={"Authorization": f"Bearer {tokens['admin']}"},
                          json={"tenant": "school_a", "tokens_per_day": tokens_per_day})
    assert response.status_code == 200, response.text


def test_the_counts_this_test_relies_on() -> None:
    assert len(T.encoding("cl100k_base").encode_ordinary(KOREAN)) == CL100K
    assert O200K == 26


@pytest.mark.parametrize("door, vendor, path, body, too_small", DOORS,
                         ids=[d[0] for d in DOORS])
def test_korean_prompt_is_reserved_by_its_real_size(
        fakes: Fakes, gateway_with_keys: Callable[[str], TestClient], tokens: dict[str, str],
        door: str, vendor: str, path: str, body: dict[str, Any], too_small: int) -> None:
    client = gateway_with_keys(keys_toml(fakes))
    student = {"Authorization": f"Bearer {tokens['student_a']}"}
    limit(client, tokens, too_small)
    refused = client.post(path, headers=student, json=body)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    code = error["details"][0]["metadata"]["code"] if vendor == "google" else error["code"]
    assert code == "quota_exceeded"
    assert "tokens" in error["message"]
    assert fakes.requests(vendor) == []

    limit(client, tokens, 10_000)
    served = client.post(path, headers=student, json=body)
    assert served.status_code == 200, served.text
    sent = fakes.requests(vendor)
    assert len(sent) == 1 and KOREAN in str(sent[0]["json"])
    runs = client.get("/api/history", headers=student, params={"limit": 10}).json()["items"]
    assert [run["status"] for run in runs][:1] == ["ok"] and len(runs) == 2, runs
