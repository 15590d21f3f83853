"""Google: the fake checked with ``google-genai``; the SDK against the gateway's native
face (``GOOGLE_GEMINI_BASE_URL=<gateway>/google``) for gemini-* and for other models;
gemini-* on the OpenAI face; NanoBanana image sessions; safety blocks in words; each
error as the SDK's own exception."""

from __future__ import annotations

import base64

import openai
import pytest
from google import genai
from google.genai import errors, types
from openai import OpenAI

PNG = b"\x89PNG\r\n\x1a\nfake-image"


def gemini(base_url: str, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)))


@pytest.fixture
def client(vendor_gateway, tokens):
    return gemini(vendor_gateway.url + "/google", tokens["student_a"])


def test_fake_speaks_gemini_to_the_official_sdk(fakes):
    direct = gemini(fakes.base("google"), "AIza-direct")
    reply = direct.models.generate_content(model="gemini-2.5-flash", contents="hello")
    assert reply.text == "Fake Gemini reply: hello"
    assert reply.usage_metadata.candidates_token_count == 4
    sent = fakes.requests("google")[-1]
    # what the installed SDK really calls: /v1/, with the key in x-goog-api-key
    assert sent["path"] == "/v1/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "AIza-direct"
    streamed = list(direct.models.generate_content_stream(model="gemini-2.5-flash",
                                                          contents="hi there"))
    assert "".join(c.text for c in streamed) == "Fake Gemini reply: hi there"
    assert fakes.requests("google")[-1]["query"] == {"alt": "sse"}
    refusing = gemini(fakes.base("google"), "AIza-bad")  # kept: the SDK closes when collected
    with pytest.raises(errors.ClientError) as refused:
        refusing.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert refused.value.code == 400 and "API key not valid" in refused.value.message


def test_native_face_passes_gemini_through(client, fakes, api):
    reply = client.models.generate_content(
        model="gemini-2.5-flash",
        contents=[types.Part.from_bytes(data=PNG, mime_type="image/png"), "What is this?"],
        config=types.GenerateContentConfig(system_instruction="Be kind.",
                                           max_output_tokens=100))
    assert reply.text == "Fake Gemini reply: What is this? (saw 1 image) [system: Be kind.]"
    sent = fakes.requests("google")[-1]
    assert sent["path"] == "/v1/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "AIza-fake-0001"
    assert sent["json"]["generationConfig"]["maxOutputTokens"] == 100
    row = api().last_run()
    assert (row["api"], row["provider"], row["status"], row["key_name"]) == (
        "google", "google", "ok", "google-main")


def test_native_stream_with_usage(client, api):
    chunks = list(client.models.generate_content_stream(
        model="gemini-2.5-flash",
        contents="think [[usage prompt=1000 cached=500 completion=300 reasoning=100]]"))
    assert "".join(c.text for c in chunks) == "Fake Gemini reply: think"
    assert chunks[-1].usage_metadata.thoughts_token_count == 100
    row = api().finished_run()
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"],
            row["reasoning_tokens"]) == (1000, 500, 300, 100)
    # 500 × $0.30 + 500 × $0.075 + 200 × $2.50 + 100 thinking × $2.50, per million: 937.5
    assert row["cost_micro_usd"] == 938 and row["cost_status"] == "priced"


def test_native_face_translates_other_models_and_embeds(client, api):
    echoed = client.models.generate_content(model="mock/echo", contents="echo via google")
    assert echoed.text == "echo via google"
    assert echoed.usage_metadata.candidates_token_count == 3
    streamed = list(client.models.generate_content_stream(model="claude-haiku-4-5",
                                                          contents="hi"))
    assert "".join(c.text or "" for c in streamed) == "Fake Claude reply: hi"
    assert streamed[-1].usage_metadata.candidates_token_count == 4
    vectors = client.models.embed_content(model="gemini-embedding-001",
                                          contents=["one", "two words"])
    assert [len(e.values) for e in vectors.embeddings] == [8, 8]
    mock = client.models.embed_content(model="mock/embed", contents="cat")
    assert len(mock.embeddings[0].values) == 64
    row = api().last_run()
    assert (row["kind"], row["api"], row["model"]) == ("embedding", "google", "mock/embed")


def test_safety_blocks_are_reported_in_words(client, vendor_gateway, tokens, api):
    blocked = client.models.generate_content(model="gemini-2.5-flash", contents="[[block]]")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    row = api().last_run()
    assert (row["status"], row["error_code"]) == ("error", "content_blocked")
    assert "judged unsafe" in row["error_message"] and "dangerous content" in row["error_message"]
    face = OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        face.chat.completions.create(model="gemini-2.5-flash",
                                     messages=[{"role": "user", "content": "[[unsafe-answer]]"}])
    assert refused.value.code == "content_blocked"
    assert "Google stopped the answer (SAFETY)" in refused.value.message
    with pytest.raises(openai.BadRequestError) as streamed:
        list(face.chat.completions.create(model="gemini-2.5-flash", stream=True,
                                          messages=[{"role": "user", "content": "[[block]]"}]))
    assert streamed.value.code == "content_blocked"
    assert "Google blocked the prompt (SAFETY)" in streamed.value.message


def test_gemini_on_the_openai_face(vendor_gateway, tokens, fakes, api):
    face = OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    reply = face.chat.completions.create(model="gemini-2.5-flash", messages=[
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": image}}]}])
    assert reply.choices[0].message.content == \
        "Fake Gemini reply: look (saw 1 image) [system: Sys.]"
    body = fakes.requests("google")[-1]
    assert body["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert body["json"]["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"
    chunks = list(face.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "go [[usage "
                                             "prompt=10 completion=4]]"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Fake Gemini reply: go"
    row = api().finished_run()
    assert (row["prompt_tokens"], row["completion_tokens"]) == (10, 4)


def test_nanobanana_sessions_carry_earlier_images(vendor_gateway, tokens, fakes, api):
    face = OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)
    first = face.images.generate(model="gemini-2.5-flash-image", prompt="a cat",
                                 extra_body={"style": "watercolor"})
    session = first.model_extra["session_id"]
    assert base64.b64decode(first.data[0].b64_json).startswith(b"\x89PNG")
    sent = fakes.requests("google")[-1]["json"]
    assert "watercolour" in sent["contents"][-1]["parts"][0]["text"]
    assert sent["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    # the fake counts 11 prompt tokens and 10 words + 1290 image tokens out:
    # 11 × $0.30 + 1300 × $30, per million = 39 003.3
    row = api().last_run()
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 1300)
    assert row["cost_micro_usd"] == 39_003
    face.images.generate(model="gemini-2.5-flash-image", prompt="now make it blue",
                         extra_body={"session_id": session})
    turns = fakes.requests("google")[-1]["json"]["contents"]
    assert [t["role"] for t in turns] == ["user", "model", "user"]
    assert "inlineData" in turns[1]["parts"][0]
    assert turns[2]["parts"][0]["text"] == "now make it blue"


def test_errors_raise_the_sdks_own_exceptions(client, fakes, vendor_gateway):
    fakes.fail("google", times=10, status=429, retry_after=0.05, path="generateContent")
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    reasons = [d.get("reason") for d in limited.value.details["error"]["details"]]
    assert "PROVIDER_RATE_LIMITED" in reasons
    fakes.reset()
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_content(model="no-such-model", contents="x")
    assert missing.value.code == 404
    with pytest.raises(errors.ClientError) as too_long:
        client.models.generate_content(model="gemini-2.5-flash", contents="[[too-long]]")
    assert too_long.value.code == 400
    assert "CONTEXT_LENGTH_EXCEEDED" in str(too_long.value.details)
    stranger = gemini(vendor_gateway.url + "/google", "not-a-token")
    with pytest.raises(errors.ClientError) as denied:
        stranger.models.generate_content(model="mock/echo", contents="x")
    assert denied.value.code == 401
    fakes.fail("google", times=10, status=503, path="generateContent")
    with pytest.raises(errors.ServerError) as down:
        client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert down.value.code == 503


def test_image_models_on_the_native_face_fill_the_gallery(client, api, fakes):
    """NanoBanana with google-genai: gemini-*-image passed through, mock/image offline."""
    made = client.models.generate_content(model="gemini-2.5-flash-image",
                                          contents="a robot painting")
    inline = [p.inline_data for p in made.candidates[0].content.parts if p.inline_data]
    assert inline and inline[0].data.startswith(b"\x89PNG")
    row = api().last_run()
    assert (row["kind"], row["provider"], row["status"]) == ("image", "google", "ok")
    offline = client.models.generate_content(model="mock/image", contents="a robot painting")
    mock_png = [p.inline_data.data for p in offline.candidates[0].content.parts if p.inline_data]
    assert mock_png and mock_png[0].startswith(b"\x89PNG")
    gallery = api().get("/api/artifacts", kind="image")["items"]
    assert [g["model"] for g in gallery[:2]] == ["mock/image", "gemini-2.5-flash-image"]
    assert gallery[0]["prompt"] == "a robot painting" and gallery[0]["run_id"] == \
        api().last_run()["id"]
