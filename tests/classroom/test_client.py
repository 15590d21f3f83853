"""``GatewayClient``: error bodies become ``GatewayError``s, streams become text and usage.

The first half replaces the network with ``httpx.MockTransport`` to pin the
mapping of every kind of answer; the second half talks to the real gateway.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from classroom import ChatResult, GatewayClient, GatewayError, Usage

from tests.support.procs import free_port

URL = "http://gateway.test/services/gateway"
TOKEN = "tok-never-shown-42"


def error_response(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "x", "code": code, "param": None}}
    return httpx.Response(status, json=body, headers=headers)


def client_answering(response: httpx.Response, seen: list[httpx.Request] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return response

    return GatewayClient(URL, TOKEN, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (401, "invalid_token", "restart your server from the hub"),
        (404, "model_not_found", "does not know a model called 'gpt-9'"),
        (403, "model_not_allowed", "has not enabled the model 'gpt-9'"),
        (422, "invalid_request", "The request was not accepted: messages must not be empty."),
        (429, "quota_exceeded", "used up your quota"),
        (429, "budget_exceeded", "budget is used up"),
        (429, "queue_timeout", "Try again in a minute"),
        (503, "provider_unavailable", "provider behind 'gpt-9' could not answer"),
        (504, "provider_timeout", "provider behind 'gpt-9' could not answer"),
    ],
)
def test_error_bodies_become_gateway_errors(status, code, words):
    client = client_answering(error_response(status, code, "messages must not be empty"))

    with pytest.raises(GatewayError) as caught:
        client.chat("hi", model="gpt-9")

    error = caught.value
    assert (error.status, error.code, error.message) == (status, code, "messages must not be empty")
    assert words in error.explain()
    assert str(error) == error.explain()
    assert TOKEN not in str(error) + repr(error)


def test_unknown_model_explanation_lists_the_models_to_pick_from():
    client = client_answering(error_response(404, "model_not_found", "Unknown model"))
    with pytest.raises(GatewayError) as caught:
        client.chat("hi", model="gpt-9")
    text = caught.value.explain(["mock/echo", "mock/lorem"])
    assert "classroom.client.models()" in text
    assert text.endswith("Models you can use: mock/echo, mock/lorem.")


def test_retry_after_is_kept():
    client = client_answering(
        error_response(429, "rate_limited", "slow down", **{"Retry-After": "7"})
    )
    with pytest.raises(GatewayError) as caught:
        client.get("/v1/models")
    assert caught.value.retry_after == 7.0


def test_a_proxy_error_page_is_reported_as_gateway_unavailable():
    client = client_answering(httpx.Response(503, text="<html>Service Unavailable</html>"))
    with pytest.raises(GatewayError) as caught:
        client.models()
    assert (caught.value.code, caught.value.status) == ("gateway_unavailable", 503)
    assert "HTTP 503" in caught.value.explain()


def test_requests_carry_token_source_and_json():
    seen: list[httpx.Request] = []
    body = {"object": "list", "data": [{"id": "mock/echo"}, {"id": "mock/lorem"}]}
    client = client_answering(httpx.Response(200, json=body), seen).with_source("widget")

    assert client.models() == ["mock/echo", "mock/lorem"]
    request = seen[0]
    assert str(request.url) == f"{URL}/v1/models"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["x-classroom-source"] == "widget"


def test_history_leaves_out_filters_that_are_not_given():
    seen: list[httpx.Request] = []
    client = client_answering(httpx.Response(200, json={"items": [], "total": 0}), seen)
    client.history(limit=5, model="mock/echo")
    assert dict(seen[0].url.params) == {"limit": "5", "offset": "0", "model": "mock/echo"}


def sse(*events: object) -> bytes:
    lines = [f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n" for e in events]
    return "".join(lines).encode()


def chunk(text: str | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage else [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "mock/echo",
        "choices": choices,
        "usage": usage,
    }


def test_stream_chat_yields_text_pieces_then_usage():
    seen: list[httpx.Request] = []
    body = sse(
        chunk("Hel"),
        chunk("lo"),
        chunk(None, "stop"),
        chunk(usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}),
        "[DONE]",
    )
    client = client_answering(httpx.Response(200, content=body), seen)

    stream = client.stream_chat([{"role": "user", "content": "Hello"}], model="mock/echo")
    assert list(stream) == ["Hel", "lo"]

    assert stream.result is not None
    assert (stream.result.text, stream.result.finish_reason) == ("Hello", "stop")
    assert stream.usage == Usage(9, 2, 11)
    sent = json.loads(seen[0].content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_an_error_in_the_middle_of_a_stream_is_raised():
    failure = {
        "error": {
            "message": "The mock provider failed mid-stream.",
            "code": "provider_error",
            "type": "api_error",
        }
    }
    client = client_answering(httpx.Response(200, content=sse(chunk("Hi"), failure)))
    pieces = []
    with pytest.raises(GatewayError) as caught:
        for piece in client.stream_chat("hi", model="mock/echo"):
            pieces.append(piece)
    assert pieces == ["Hi"]
    assert caught.value.code == "provider_error"


def test_async_calls_map_errors_the_same_way():
    def handler(request: httpx.Request) -> httpx.Response:
        return error_response(401, "invalid_token", "Unknown token")

    client = GatewayClient(URL, TOKEN, async_transport=httpx.MockTransport(handler))

    async def call() -> None:
        await client.achat("hi")

    with pytest.raises(GatewayError) as caught:
        asyncio.run(call())
    assert caught.value.code == "invalid_token"


def test_an_unreachable_gateway_is_said_in_words():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(GatewayError) as caught:
        GatewayClient(url, TOKEN).models()
    assert caught.value.code == "gateway_unreachable"
    assert caught.value.explain().startswith(f"The classroom gateway at {url} could not be reached")


def test_a_missing_configuration_is_said_in_words(clean_env):
    with pytest.raises(GatewayError) as caught:
        GatewayClient().models()
    assert caught.value.code == "not_configured"
    assert "CLASSROOM_GATEWAY_URL" in caught.value.explain()


# -- against the real gateway ---------------------------------------------------------


def test_models_me_and_chat_on_the_real_gateway(student_client, history_ids, gateway_server):
    before = set(history_ids(gateway_server.tokens["student_a"]))

    assert {"mock/echo", "mock/lorem"} <= set(student_client.models())
    me = student_client.me()
    assert (me["name"], me["tenant"], me["role"]) == ("stu_a", "school_a", "student")

    result = student_client.chat("Echo me, please.", model="mock/echo")
    assert isinstance(result, ChatResult)
    assert result.text == "Echo me, please."
    assert result.usage is not None and result.usage.completion_tokens > 0

    new = [
        run
        for rid, run in history_ids(gateway_server.tokens["student_a"]).items()
        if rid not in before
    ]
    assert [(r["source"], r["model"], r["status"]) for r in new] == [("sdk", "mock/echo", "ok")]


def test_streaming_on_the_real_gateway(student_client):
    stream = student_client.stream_chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one two three"}],
        model="mock/echo",
    )
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == "one two three"
    assert stream.usage is not None and stream.usage.total_tokens == (
        stream.usage.prompt_tokens + stream.usage.completion_tokens
    )
    assert stream.result is not None and stream.result.first_token_latency is not None

    lorem = student_client.chat("Tell me a story", model="mock/lorem", stream=True)
    assert len(lorem.text.split()) >= 20


def test_async_streaming_on_the_real_gateway(student_client):
    async def run() -> tuple[list[str], ChatResult | None]:
        stream = student_client.astream_chat("async works", model="mock/echo")
        pieces = [piece async for piece in stream]
        await student_client.aclose()
        return pieces, stream.result

    pieces, result = asyncio.run(run())
    assert "".join(pieces) == "async works"
    assert result is not None and result.usage is not None


def test_real_gateway_errors_have_codes(gateway_server, clean_env):
    with pytest.raises(GatewayError) as caught:
        GatewayClient(gateway_server.url, "not-a-real-token").models()
    assert (caught.value.status, caught.value.code) == (401, "invalid_token")

    client = GatewayClient(gateway_server.url, gateway_server.tokens["student_a"])
    with pytest.raises(GatewayError) as caught:
        client.chat("hi", model="no-such/model", stream=True)
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")
    assert "'no-such/model'" in caught.value.explain()


def test_ipython_shows_the_explanation_instead_of_a_long_traceback():
    error = GatewayError("Unknown token", code="invalid_token", status=401)
    assert error._render_traceback_() == [
        "GatewayError [invalid_token]: Your session token was not accepted — restart your "
        "server from the hub (File → Hub Control Panel → Stop My Server, then Start My Server)."
    ]
