"""Bad input, on purpose: oversized and deeply nested bodies, invalid UTF-8, enormous and
negative numbers, unknown fields, base64 that is not an image, wrong content types.

Each is refused with a 4xx whose message names the problem, in the shape of the face it
came through; and once the caller is known, a provider call that was attempted leaves a
history row saying why it was refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.edge.app import create_asgi
from gateway.providers import mock_media

PNG = mock_media.png("a test image", 8, 8)
PNG_B64 = base64.b64encode(PNG).decode()
TEXT_B64 = base64.b64encode(b"Dear diary, this is not a picture.").decode()
HI = [{"role": "user", "content": "hi"}]
JSON = {"content-type": "application/json"}


def auth(tokens: dict[str, str], who: str = "student_a") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "mock/echo", "messages": HI, **extra}


def image_message(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}}]}]


def anthropic(**extra: Any) -> dict[str, Any]:
    return {"model": "mock/echo", "max_tokens": 50, "messages": HI, **extra}


def anthropic_image(data: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "What is this?"}]}]


def gemini_image(data: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [
        {"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": data}}]}]}


def nested(depth: int) -> bytes:
    return (b'{"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}], "x": '
            + b"[" * depth + b"]" * depth + b"}")


def shape_of(path: str, response: Any) -> dict[str, Any]:
    """The error of a response, checked against its face's documented shape."""
    body = response.json()
    error = body["error"]
    if path.startswith("/anthropic/"):
        assert body["type"] == "error" and {"type", "message"} <= set(error)
    elif path.startswith("/google/"):
        assert error["code"] == response.status_code
        assert {"message", "status", "details"} <= set(error)
        error = {**error, "code": error["details"][0]["metadata"]["code"],
                 "param": error["details"][0]["metadata"].get("param")}
    else:
        assert {"message", "type", "code"} <= set(error)
    return error


GOOGLE = "/google/v1beta/models/{model}:generateContent"

# (id, path, request kwargs, status, words in the message, param named)
CALLS: list[tuple[str, str, dict[str, Any], int, str, str | None]] = [
    ("chat-invalid-utf8", "/v1/chat/completions",
     {"content": b'{"model": "mock/echo", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
      "headers": JSON}, 400, "UTF-8", None),
    ("chat-nested-too-deep", "/v1/chat/completions",
     {"content": nested(100_000), "headers": JSON}, 400, "nested too deeply", None),
    ("chat-enormous-max-tokens", "/v1/chat/completions",
     {"json": chat(max_tokens=10**15)}, 400, "less than or equal to 1000000", "max_tokens"),
    ("chat-fractional-max-tokens", "/v1/chat/completions",
     {"json": chat(max_tokens=512.5)}, 400, "integer", "max_tokens"),
    ("chat-negative-max-tokens", "/v1/chat/completions",
     {"json": chat(max_tokens=-5)}, 400, "greater than or equal to 1", "max_tokens"),
    ("chat-negative-temperature", "/v1/chat/completions",
     {"json": chat(temperature=-1)}, 400, "greater than or equal to 0", "temperature"),
    ("chat-negative-n", "/v1/chat/completions",
     {"json": chat(n=-3)}, 400, "greater than or equal to 1", "n"),
    ("chat-image-not-an-image", "/v1/chat/completions",
     {"json": chat(messages=image_message(f"data:image/png;base64,{TEXT_B64}"))},
     400, "not an image", "messages.0.content"),
    ("chat-image-not-base64", "/v1/chat/completions",
     {"json": chat(messages=image_message("data:image/png;base64,%%%not*base64%%%"))},
     400, "not valid base64", "messages.0.content"),
    ("chat-text-plain", "/v1/chat/completions",
     {"content": json.dumps(chat()).encode(), "headers": {"content-type": "text/plain"}},
     400, "Content-Type: application/json", None),
    ("chat-form-urlencoded", "/v1/chat/completions",
     {"data": {"model": "mock/echo"}}, 400, "Content-Type: application/json", None),
    ("chat-not-an-object", "/v1/chat/completions",
     {"json": [chat()]}, 400, "must be a JSON object", None),
    ("anthropic-enormous-max-tokens", "/anthropic/v1/messages",
     {"json": anthropic(max_tokens=10**15)}, 400, "max_tokens", None),
    ("anthropic-negative-max-tokens", "/anthropic/v1/messages",
     {"json": anthropic(max_tokens=-1)}, 400, "max_tokens", None),
    ("anthropic-image-not-an-image", "/anthropic/v1/messages",
     {"json": anthropic(messages=anthropic_image(TEXT_B64))}, 400, "not an image", None),
    ("anthropic-native-image-not-an-image", "/anthropic/v1/messages",
     {"json": anthropic(model="claude-haiku-4-5", messages=anthropic_image(TEXT_B64))},
     400, "not an image", None),
    ("anthropic-text-plain", "/anthropic/v1/messages",
     {"content": json.dumps(anthropic()).encode(), "headers": {"content-type": "text/plain"}},
     400, "Content-Type: application/json", None),
    ("gemini-inline-data-not-an-image", GOOGLE.format(model="mock/echo"),
     {"json": gemini_image(TEXT_B64)}, 400, "not an image", "contents.0.parts.1.inlineData"),
    ("gemini-native-inline-data-not-an-image", GOOGLE.format(model="gemini-2.5-flash"),
     {"json": gemini_image(TEXT_B64)}, 400, "not an image", "contents.0.parts.1.inlineData"),
    ("gemini-image-model-inline-data-not-base64", GOOGLE.format(model="mock/image"),
     {"json": gemini_image("@@@@")}, 400, "not valid base64", "contents.0.parts.1.inlineData"),
    ("gemini-enormous-max-output-tokens", GOOGLE.format(model="mock/echo"),
     {"json": {"contents": "hi", "generationConfig": {"maxOutputTokens": 10**15}}},
     400, "less than or equal to 1000000", "generationConfig.maxOutputTokens"),
    ("gemini-text-plain", GOOGLE.format(model="mock/echo"),
     {"content": b'{"contents": "hi"}', "headers": {"content-type": "text/plain"}},
     400, "Content-Type: application/json", None),
    ("edit-upload-not-an-image", "/v1/images/edits",
     {"files": {"image": ("photo.png", b"just some text", "image/png")},
      "data": {"prompt": "add a hat", "model": "mock/image"}}, 400, "not an image", "image"),
    ("edit-mask-not-an-image", "/v1/images/edits",
     {"files": [("image", ("photo.png", PNG, "image/png")),
                ("mask", ("mask.png", b"GIF8 but not really", "image/png"))],
      "data": {"prompt": "add a hat", "model": "mock/image"}}, 400, "not an image", "mask"),
    ("edit-json-instead-of-form", "/v1/images/edits",
     {"json": {"prompt": "add a hat", "image": PNG_B64}}, 400, "multipart/form-data", None),
    ("images-negative-n", "/v1/images/generations",
     {"json": {"model": "mock/image", "prompt": "a cat", "n": -1}}, 400, "greater than", "n"),
    ("embeddings-negative-dimensions", "/v1/embeddings",
     {"json": {"model": "mock/embed", "input": "hi", "dimensions": -8}}, 400, "greater",
     "dimensions"),
    ("speech-enormous-speed", "/v1/audio/speech",
     {"json": {"model": "mock/speech", "input": "hi", "speed": 1e300}}, 400, "less than", "speed"),
    ("jobs-unknown-field", "/api/jobs",
     {"json": {"kind": "video", "model": "mock/video", "prompt": "a cat", "colour": "red"}},
     400, "colour", "colour"),
    ("jobs-text-plain", "/api/jobs",
     {"content": b'{"kind": "video"}', "headers": {"content-type": "text/plain"}},
     400, "Content-Type: application/json", None),
]


@pytest.fixture
def client(gateway_settings: Any) -> Iterator[TestClient]:
    settings = gateway_settings.model_copy(update={"max_body_bytes": 256 * 1024})
    with TestClient(create_asgi(settings)) as client:
        yield client


def history(client: TestClient, tokens: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/api/history", headers=auth(tokens), params={"limit": 5})
    assert response.status_code == 200
    return response.json()["items"]


@pytest.mark.parametrize("path,kwargs,status,words,param",
                         [case[1:] for case in CALLS], ids=[case[0] for case in CALLS])
def test_refused_in_words_with_a_history_row(client, tokens, path, kwargs, status, words, param):
    response = client.post(path, headers={**auth(tokens), **kwargs.pop("headers", {})}, **kwargs)
    assert response.status_code == status, response.text
    error = shape_of(path, response)
    assert words in error["message"], error["message"]
    if param is not None:
        assert error.get("param") == param
    rows = history(client, tokens)
    assert rows, "the refusal left no history row"
    row = rows[0]
    assert (row["status"], row["http_status"]) == ("error", status)
    assert row["error_message"] == error["message"]
    assert row["user"] == "stu_a"


def test_a_nested_body_within_the_parser_limit_is_answered_not_crashed(client, tokens):
    response = client.post("/v1/chat/completions", content=nested(900),
                           headers={**auth(tokens), **JSON})
    assert response.status_code in (200, 400), response.text
    assert history(client, tokens)[0]["status"] in ("ok", "error")


def test_good_images_still_pass(client, tokens):
    ok = client.post("/v1/chat/completions", headers=auth(tokens),
                     json=chat(messages=image_message(f"data:image/png;base64,{PNG_B64}")))
    assert ok.status_code == 200, ok.text
    remote = client.post("/v1/chat/completions", headers=auth(tokens),
                         json=chat(messages=image_message("https://example.org/cat.png")))
    assert remote.status_code == 200, remote.text  # fetched by the provider, not by us
    gemini = client.post(GOOGLE.format(model="mock/echo"), headers=auth(tokens),
                         json=gemini_image(PNG_B64))
    assert gemini.status_code == 200, gemini.text
    edit = client.post("/v1/images/edits", headers=auth(tokens),
                       files={"image": ("photo.png", PNG, "image/png")},
                       data={"prompt": "add a hat", "model": "mock/image"})
    assert edit.status_code == 200, edit.text


def test_charset_and_vendor_json_types_are_json(client, tokens):
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post("/v1/chat/completions", content=json.dumps(chat()).encode(),
                               headers={**auth(tokens), "content-type": content_type})
        assert response.status_code == 200, (content_type, response.text)


# -- refused before the caller is known, or not a provider call: no history row -----------------


def test_oversized_bodies_are_413_before_anything_is_read(client, tokens):
    big = json.dumps(chat(messages=[{"role": "user", "content": "x" * 300_000}])).encode()
    declared = client.post("/v1/chat/completions", content=big, headers={**auth(tokens), **JSON})
    assert declared.status_code == 413
    error = declared.json()["error"]
    assert error["code"] == "payload_too_large" and "larger than" in error["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 16_384):
            yield big[start:start + 16_384]

    streamed = client.post("/v1/chat/completions", content=chunks(),
                           headers={**auth(tokens), **JSON})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    for face, path in (("anthropic", "/anthropic/v1/messages"),
                       ("google", GOOGLE.format(model="mock/echo"))):
        response = client.post(path, content=big, headers={**auth(tokens), **JSON})
        assert response.status_code == 413
        assert "larger than" in shape_of(path, response)["message"], face


@pytest.mark.parametrize("method,path,kwargs,param,words", [
    ("post", "/api/conversations", {"json": {"title": "x", "colour": "red"}}, "colour",
     "unknown field"),
    ("get", "/api/history", {"params": {"limit": -1}}, "limit", "greater than or equal to 1"),
    ("get", "/api/history", {"params": {"offset": 2**70}}, "offset", "less than or equal"),
    ("get", f"/api/history/{2**70}", {}, "run_id", "less than or equal"),
    ("get", "/api/history/-4", {}, "run_id", "greater than or equal to 1"),
    ("post", "/api/conversations", {"content": b"{", "headers": JSON}, None, "not valid JSON"),
    ("post", "/api/conversations", {"content": b'{"title": "x"}',
                                    "headers": {"content-type": "text/plain"}},
     None, "Content-Type: application/json"),
    ("post", "/api/conversations", {"content": b"[" * 100_000, "headers": JSON}, None,
     "nested"),
])
def test_classroom_api_names_the_bad_parameter(client, tokens, method, path, kwargs, param,
                                               words):
    headers = {**auth(tokens), **kwargs.pop("headers", {})}
    response = getattr(client, method)(path, headers=headers, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    error = shape_of(path, response)
    assert words in error["message"], error["message"]
    assert error["param"] == param
