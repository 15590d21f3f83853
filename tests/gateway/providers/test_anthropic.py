"""Anthropic: the fake checked with the official SDK; the SDK against the gateway's
native face (``base_url=<gateway>/anthropic``) for claude-* and for other models
(translated); claude-* on the OpenAI face; each error as the SDK's own exception."""

from __future__ import annotations

import base64

import anthropic
import pytest
from anthropic import Anthropic
from openai import OpenAI

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def client(vendor_gateway, tokens):
    return Anthropic(base_url=vendor_gateway.url + "/anthropic", api_key=tokens["student_a"],
                     max_retries=0)


def test_fake_speaks_anthropic_to_the_official_sdk(fakes):
    direct = Anthropic(base_url=fakes.base("anthropic"), api_key="sk-ant-direct", max_retries=0)
    message = direct.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                     messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].text == "Fake Claude reply: hello"
    with direct.messages.stream(model="claude-haiku-4-5", max_tokens=50,
                                messages=[{"role": "user", "content": "hi you"}]) as stream:
        assert "".join(stream.text_stream) == "Fake Claude reply: hi you"
        assert stream.get_final_message().usage.output_tokens == 5
    sent = fakes.requests("anthropic")[-1]["headers"]
    # what the installed SDK really sends: a Bearer token and its own dated version
    assert sent["authorization"] == "Bearer sk-ant-direct"
    assert sent["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    with pytest.raises(anthropic.AuthenticationError):
        Anthropic(base_url=fakes.base("anthropic"), api_key="sk-bad", max_retries=0) \
            .messages.create(model="claude-haiku-4-5", max_tokens=5,
                             messages=[{"role": "user", "content": "x"}])


def test_native_face_passes_claude_through(client, fakes, api):
    message = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, system="Be brief.",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}]}])
    assert message.content[0].text == (
        "Fake Claude reply: Describe [system: Be brief.] (saw 1 image)")
    sent = fakes.requests("anthropic")[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-fake-0001"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["json"]["system"] == "Be brief."
    row = api().last_run()
    assert (row["api"], row["provider"], row["status"], row["key_name"]) == (
        "anthropic", "anthropic", "ok", "anthropic-main")
    assert row["completion_tokens"] == message.usage.output_tokens


def test_native_stream_with_usage(client, api):
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=[
            {"role": "user", "content": "go [[usage prompt=1000 cached=300 write=200 "
             "completion=50]]"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Fake Claude reply: go"
    assert final.usage.cache_read_input_tokens == 300
    row = api().finished_run()
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (1000, 300, 50)
    # 500 × $1 + 300 × $0.10 + 200 × $1.25 (cache write) + 50 × $5, per million
    assert row["cost_micro_usd"] == 1030 and row["cost_status"] == "priced"


def test_native_face_translates_other_models(client, api):
    message = client.messages.create(model="mock/echo", max_tokens=50,
                                     messages=[{"role": "user", "content": "echo me"}])
    assert message.content[0].text == "echo me"
    assert message.usage.output_tokens == 2
    with client.messages.stream(model="gpt-4o-mini", max_tokens=50,
                                messages=[{"role": "user", "content": "via openai"}]) as stream:
        assert "".join(stream.text_stream) == "Fake OpenAI reply: via openai"
        assert stream.get_final_message().usage.output_tokens == 5
    row = api().finished_run()
    assert (row["api"], row["provider"], row["status"]) == ("anthropic", "openai", "ok")


def test_claude_on_the_openai_face(vendor_gateway, tokens, fakes):
    client = OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                    max_retries=0)
    reply = client.chat.completions.create(model="claude-haiku-4-5", messages=[
        {"role": "system", "content": "Sys."}, {"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Fake Claude reply: hi [system: Sys.]"
    body = fakes.requests("anthropic")[-1]["json"]
    assert body["system"] == "Sys." and body["max_tokens"] == 4096
    chunks = list(client.chat.completions.create(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": "stream it"}],
        stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Fake Claude reply: stream it"
    assert chunks[-1].usage.completion_tokens == 5


def test_errors_raise_the_sdks_own_exceptions(client, fakes, tokens, vendor_gateway, api):
    fakes.fail("anthropic", times=10, status=429, retry_after=0.05, path="messages")
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])
    assert limited.value.body["error"]["code"] == "provider_rate_limited"
    assert limited.value.response.headers["retry-after"] == "1"
    fakes.reset()
    with pytest.raises(anthropic.BadRequestError) as too_long:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                               messages=[{"role": "user", "content": "[[too-long]]"}])
    assert too_long.value.body["error"]["code"] == "context_length_exceeded"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="claude-haiku-4-5", max_tokens=0,
                               messages=[{"role": "user", "content": "x"}])
    assert bad.value.body["error"]["code"] == "invalid_request"
    assert "max_tokens" in bad.value.message
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["code"] == "model_not_found"
    stranger = Anthropic(base_url=vendor_gateway.url + "/anthropic", api_key="nope",
                         max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(model="mock/echo", max_tokens=5,
                                 messages=[{"role": "user", "content": "x"}])
    fakes.fail("anthropic", times=10, status=529, path="messages")
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                               messages=[{"role": "user", "content": "x"}])
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    assert api().last_run()["error_code"] == "provider_unavailable"
