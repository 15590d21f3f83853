"""OpenAI: the fake checked with the official SDK, then the SDK against the gateway
whose keys point at the fake: chat, streams, image input, tools, embeddings, images,
speech, and each error as the SDK's own exception."""

from __future__ import annotations

import array
import base64

import httpx
import openai
import pytest
from openai import OpenAI

PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def client(vendor_gateway, tokens):
    return OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)


def test_fake_speaks_openai_to_the_official_sdk(fakes):
    direct = OpenAI(base_url=fakes.base("openai") + "/v1", api_key="sk-direct-1", max_retries=0)
    reply = direct.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content == "Fake OpenAI reply: hello"
    chunks = list(direct.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi there"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].choices == []
    vectors = direct.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(vectors.data) == 2 and len(vectors.data[1].embedding) == 8
    refused = OpenAI(base_url=fakes.base("openai") + "/v1", api_key="sk-bad-1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        refused.embeddings.create(model="text-embedding-3-small", input="x")
    assert denied.value.code == "invalid_api_key"


def test_chat_through_the_gateway(client, fakes, api):
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, OpenAI"}])
    assert reply.choices[0].message.content == "Fake OpenAI reply: Hello, OpenAI"
    sent = fakes.requests("openai")[-1]
    assert sent["headers"]["authorization"] == "Bearer sk-fake-main-0001"
    assert sent["json"]["model"] == "gpt-4o-mini" and sent["json"]["stream"] is False
    row = api().last_run()
    assert (row["provider"], row["model"], row["status"], row["key_name"]) == (
        "openai", "gpt-4o-mini", "ok", "openai-main")
    assert row["completion_tokens"] == reply.usage.completion_tokens == 5
    assert row["cost_status"] == "priced" and row["cost_micro_usd"] is not None
    assert "sk-fake" not in str(row)


@pytest.mark.parametrize("wants_usage", [True, False])
def test_stream_always_asks_upstream_for_usage(client, fakes, api, wants_usage):
    options = {"stream_options": {"include_usage": True}} if wants_usage else {}
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count [[usage "
                                        "prompt=50 completion=9]]"}], stream=True, **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fake OpenAI reply: count"
    usage_chunks = [c for c in chunks if c.usage]
    if wants_usage:
        assert len(usage_chunks) == 1 and usage_chunks[0].usage.completion_tokens == 9
    else:
        assert usage_chunks == []
    assert fakes.requests("openai")[-1]["json"]["stream_options"] == {"include_usage": True}
    row = api().finished_run()
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 50, 9)
    assert row["cost_status"] == "priced" and row["stream"] is True


def test_image_input_and_tool_calls_pass_through(client, fakes):
    reply = client.chat.completions.create(model="gpt-4.1-mini", messages=[{
        "role": "user", "content": [{"type": "text", "text": "What is this?"},
                                    {"type": "image_url", "image_url": {"url": PNG_URL}}]}])
    assert reply.choices[0].message.content.endswith("(saw 1 image)")
    part = fakes.requests("openai")[-1]["json"]["messages"][0]["content"][1]
    assert part["image_url"]["url"] == PNG_URL
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    called = client.chat.completions.create(
        model="gpt-4o-mini", tools=tools, tool_choice="auto",
        messages=[{"role": "user", "content": "weather? [[tool]]"}])
    call = called.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("weather", '{"city": "Seoul"}')
    assert called.choices[0].finish_reason == "tool_calls"
    assert fakes.requests("openai")[-1]["json"]["tool_choice"] == "auto"


def test_embeddings_float_and_base64(client, api):
    as_floats = client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"],
                                         encoding_format="float")
    assert len(as_floats.data) == 2 and len(as_floats.data[0].embedding) == 8
    default = client.embeddings.create(model="text-embedding-3-small", input="a b")
    assert default.data[0].embedding == pytest.approx(as_floats.data[0].embedding)
    row = api().last_run()
    assert (row["kind"], row["prompt_tokens"], row["cost_status"]) == ("embedding", 2, "priced")
    raw = httpx.post(str(client.base_url) + "embeddings", json={
        "model": "text-embedding-3-small", "input": "a b", "encoding_format": "base64"},
        headers={"Authorization": f"Bearer {client.api_key}"}).json()
    decoded = array.array("f", base64.b64decode(raw["data"][0]["embedding"])).tolist()
    assert decoded == pytest.approx(as_floats.data[0].embedding)


def test_images_generate_store_and_meter(client, fakes, api):
    made = client.images.generate(model="gpt-image-1", prompt="a red fox", quality="high")
    png = base64.b64decode(made.data[0].b64_json)
    assert png.startswith(b"\x89PNG")
    assert "response_format" not in fakes.requests("openai")[-1]["json"]
    row = api().last_run()
    # gpt-image-1 bills its own tokens: 8 text in at $5/M, 4160 image out at $40/M
    assert (row["kind"], row["cost_micro_usd"], row["cost_status"]) == ("image", 166_440, "priced")
    by_url = client.images.generate(model="dall-e-3", prompt="a fox", response_format="url",
                                    size="1024x1792", quality="hd")
    assert by_url.data[0].url.startswith(str(client.base_url).removesuffix("v1/") + "api/")
    assert by_url.data[0].revised_prompt == "A revised a fox"
    assert fakes.requests("openai")[-1]["json"]["response_format"] == "b64_json"
    fetched = httpx.get(by_url.data[0].url, headers={"Authorization": f"Bearer {client.api_key}"})
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    assert api().last_run()["cost_micro_usd"] == 120_000  # dall-e-3 hd 1024x1792: $0.12


def test_image_edit_is_multipart_both_ways(client, fakes, api):
    image = base64.b64decode(PNG_URL.partition(",")[2])
    edited = client.images.edit(model="gpt-image-1", image=[("a.png", image, "image/png"),
                                                            ("b.png", image, "image/png")],
                                prompt="make it blue", quality="low")
    assert base64.b64decode(edited.data[0].b64_json).startswith(b"\x89PNG")
    sent = fakes.requests("openai")[-1]
    assert sent["path"] == "/v1/images/edits"
    assert sent["headers"]["content-type"].startswith("multipart/form-data")
    # 8 text tokens at $5/M + 2 images × 323 tokens at $10/M + 272 out at $40/M
    assert api().last_run()["cost_micro_usd"] == 40 + 6460 + 10880


def test_speech_returns_audio_and_meters_characters(client, fakes, api):
    audio = client.audio.speech.create(model="tts-1", voice="nova", input="Hello there!")
    assert audio.content.startswith(b"ID3")
    assert fakes.requests("openai")[-1]["json"]["voice"] == "nova"
    row = api().last_run()
    assert (row["kind"], row["cost_micro_usd"]) == ("speech", 180)  # 12 chars × $15/M chars


def test_errors_raise_the_sdks_own_exceptions(client, fakes, api):
    fakes.fail("openai", times=10, status=429, retry_after_ms=10, path="chat")
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert limited.value.code == "provider_rate_limited"
    assert limited.value.response.headers.get("retry-after") == "1"
    assert len(fakes.requests("openai")) == 3  # retried, within its bounds
    with pytest.raises(openai.RateLimitError) as stream_limited:  # refused before any byte
        client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                       messages=[{"role": "user", "content": "x"}])
    assert stream_limited.value.code == "provider_rate_limited"
    fakes.reset()
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "[[too-long]]"}])
    assert too_long.value.code == "context_length_exceeded"
    assert too_long.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as blocked:
        client.images.generate(model="dall-e-2", prompt="[[unsafe]]")
    assert blocked.value.code == "content_blocked"
    assert "safety system" in blocked.value.message
    fakes.fail("openai", times=10, status=503, path="embeddings")
    with pytest.raises(openai.InternalServerError) as down:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert down.value.code == "provider_unavailable"
    row = api().last_run()
    assert (row["status"], row["error_code"], row["kind"]) == (
        "error", "provider_unavailable", "embedding")
