"""Retries and failover end to end: a vendor that fails N times then succeeds, one that
sends Retry-After, two keys where the first is rate limited, a refused key, timeouts,
an unreachable vendor, and a stream that breaks after its first byte (never retried)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gateway.providers.conftest import FAST, keys_toml
from tests.support.procs import free_port


@pytest.fixture(scope="module")
def failover_gateway(start_gateway, fake_vendors, tmp_path_factory):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fakes = fake_vendors
    text = keys_toml(
        fakes,
        openai=f'name = "openai-limited"\napi_key = "sk-limited-1"\npriority = 10\n'
               f'base_url = "{fakes.base("openai")}/v1"\n---\n'
               f'name = "openai-second"\napi_key = "sk-second-2"\npriority = 1\n'
               f'base_url = "{fakes.base("openai")}/v1"',
        anthropic=f'name = "anthropic-bad"\napi_key = "sk-ant-bad-1"\npriority = 10\n'
                  f'base_url = "{fakes.base("anthropic")}"\n---\n'
                  f'name = "anthropic-good"\napi_key = "sk-ant-good-2"\npriority = 1\n'
                  f'base_url = "{fakes.base("anthropic")}"',
        google=f'name = "google-bad"\napi_key = "AIza-bad-only"\n'
               f'base_url = "{fakes.base("google")}"',
        elevenlabs=f'name = "eleven-down"\napi_key = "xi-fake-1"\nbase_url = "{closed}"',
    )
    path = tmp_path_factory.mktemp("failover") / "keys.toml"
    path.write_text(text)
    return start_gateway(CLASSROOM_KEYS_FILE=str(path),
                         **{**FAST, "CLASSROOM_CHAT_TIMEOUT_SECONDS": "0.5"})


def chat(server, token, model="gpt-4o-mini", content="hi", **extra):
    return httpx.post(server.url + "/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"model": model, "messages": [{"role": "user", "content": content}],
                            **extra})


def last_run(server, token):
    return httpx.get(server.url + "/api/history", params={"limit": 1},
                     headers={"Authorization": f"Bearer {token}"}).json()["items"][0]


def test_fails_n_times_then_succeeds(vendor_gateway, fakes, tokens):
    fakes.fail("openai", times=2, status=503, path="chat")
    response = chat(vendor_gateway, tokens["student_a"])
    assert response.status_code == 200
    assert len(fakes.requests("openai")) == 3
    assert last_run(vendor_gateway, tokens["student_a"])["status"] == "ok"


def test_retry_after_is_honoured(vendor_gateway, fakes, tokens):
    fakes.fail("openai", times=1, status=429, retry_after_ms=300, path="chat")
    assert chat(vendor_gateway, tokens["student_a"]).status_code == 200
    first, second = fakes.requests("openai")
    assert second["time"] - first["time"] >= 0.3


def test_stream_is_retried_before_its_first_byte(vendor_gateway, fakes, tokens):
    fakes.fail("openai", times=1, status=502, path="chat")
    response = chat(vendor_gateway, tokens["student_a"], stream=True)
    assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
    assert len(fakes.requests("openai")) == 2


def test_stream_broken_after_its_first_byte_is_not_retried(vendor_gateway, fakes, tokens):
    response = chat(vendor_gateway, tokens["student_a"], content="go [[die after=3]]",
                    stream=True)
    assert response.status_code == 200
    assert '"Fake"' in response.text and '"code":"provider_unavailable"' in response.text
    assert len(fakes.requests("openai")) == 1
    row = last_run(vendor_gateway, tokens["student_a"])
    assert (row["status"], row["error_code"], row["cost_status"]) == (
        "error", "provider_unavailable", "estimated")
    assert row["response_text"] == "Fake OpenAI reply:" and row["completion_tokens"] == 4


def test_malformed_stream_is_a_clear_error_and_a_history_row(vendor_gateway, fakes, tokens):
    response = chat(vendor_gateway, tokens["student_a"], content="go on [[garbage after=2]]",
                    stream=True)
    assert response.status_code == 200  # the first chunks had already reached the caller
    errors = [json.loads(line[6:])["error"] for line in response.text.splitlines()
              if line.startswith("data: {") and '"error"' in line]
    assert len(errors) == 1 and errors[0]["code"] == "provider_error"
    assert "data: [DONE]" not in response.text
    row = last_run(vendor_gateway, tokens["student_a"])
    assert (row["status"], row["error_code"]) == ("error", "provider_error")
    assert row["error_message"] and row["cost_status"] == "estimated"


def test_rate_limited_first_key_fails_over_to_the_second(failover_gateway, fakes, tokens):
    token = tokens["student_a"]
    assert chat(failover_gateway, token).status_code == 200
    keys = [r["headers"]["authorization"] for r in fakes.requests("openai")]
    assert keys == ["Bearer sk-limited-1", "Bearer sk-second-2"]
    assert last_run(failover_gateway, token)["key_name"] == "openai-second"
    # the first key cools down (Retry-After: 20): the next call goes straight to the second
    assert chat(failover_gateway, token).status_code == 200
    assert fakes.requests("openai")[-1]["headers"]["authorization"] == "Bearer sk-second-2"
    assert len(fakes.requests("openai")) == 3


def test_refused_key_is_skipped_and_never_shown(failover_gateway, fakes, tokens):
    token = tokens["student_a"]
    response = chat(failover_gateway, token, model="claude-haiku-4-5")
    assert response.status_code == 200
    assert [r["headers"]["x-api-key"] for r in fakes.requests("anthropic")] == [
        "sk-ant-bad-1", "sk-ant-good-2"]
    assert chat(failover_gateway, token, model="claude-haiku-4-5").status_code == 200
    assert fakes.requests("anthropic")[-1]["headers"]["x-api-key"] == "sk-ant-good-2"
    assert len(fakes.requests("anthropic")) == 3
    refused = chat(failover_gateway, token, model="gemini-2.5-flash")
    assert refused.status_code == 502
    error = refused.json()["error"]
    assert error["code"] == "provider_auth_failed"
    assert "AIza" not in refused.text and "API key not valid" not in refused.text
    row = last_run(failover_gateway, token)
    assert row["error_code"] == "provider_auth_failed" and "AIza" not in str(row)
    after = chat(failover_gateway, token, model="gemini-2.5-flash")
    assert after.status_code == 503 and after.json()["error"]["code"] == "no_key_available"
    models = httpx.get(failover_gateway.url + "/v1/models",
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert "gemini-2.5-flash" not in {m["id"] for m in models["data"]}


def test_timeouts_are_retried_then_reported(failover_gateway, fakes, tokens):
    token = tokens["student_a"]
    claude = "claude-haiku-4-5"
    chat(failover_gateway, token, model=claude)  # the refused key is out: one key answers
    fakes.reset()
    fakes.fail("anthropic", times=1, delay=2, path="messages")
    answered = chat(failover_gateway, token, model=claude)
    assert answered.status_code == 200, answered.text
    assert len(fakes.requests("anthropic")) == 2
    fakes.fail("anthropic", times=10, delay=2, path="messages")
    response = chat(failover_gateway, token, model=claude)
    assert response.status_code == 504 and response.json()["error"]["code"] == "provider_timeout"
    assert len(fakes.requests("anthropic")) == 5  # three attempts, no more


def test_unreachable_vendor_is_provider_unavailable(failover_gateway, tokens):
    response = httpx.post(failover_gateway.url + "/v1/audio/speech", timeout=30,
                          headers={"Authorization": f"Bearer {tokens['student_a']}"},
                          json={"model": "eleven_v3", "voice": "21m00Tcm4TlvDq8ikWAM",
                                "input": "x"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_unavailable"
    assert "could not be reached" in response.json()["error"]["message"]
