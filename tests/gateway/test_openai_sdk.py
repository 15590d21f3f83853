"""The official ``openai`` SDK, unmodified, against a gateway served by uvicorn."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.procs import wait_until


@pytest.fixture
def client(gateway_server):
    return OpenAI(
        base_url=gateway_server.url + "/v1", api_key=gateway_server.tokens["student_a2"], max_retries=0
    )


def own_history(gateway_server, who="student_a2", **params):
    response = httpx.get(
        gateway_server.url + "/api/history", params=params,
        headers={"Authorization": f"Bearer {gateway_server.tokens[who]}"},
    )
    assert response.status_code == 200
    return response.json()["items"]


def test_non_streaming(client, gateway_server):
    response = client.chat.completions.create(
        model="mock/echo", messages=[{"role": "user", "content": "The SDK works."}]
    )
    assert response.choices[0].message.content == "The SDK works."
    assert response.usage.completion_tokens == 4
    row = own_history(gateway_server)[0]
    assert (row["user"], row["tenant"], row["model"], row["status"]) == (
        "stu_a2", "school_a", "mock/echo", "ok"
    )
    assert row["completion_tokens"] == 4 and row["prompt_tokens"] == response.usage.prompt_tokens


def test_streaming_with_usage(client, gateway_server):
    stream = client.chat.completions.create(
        model="mock/lorem", messages=[{"role": "user", "content": "Tell me something."}],
        stream=True, stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    text = "".join(pieces)
    assert len(text.split()) >= 20
    assert usage is not None and usage.completion_tokens == len(pieces)
    row = own_history(gateway_server)[0]
    assert row["stream"] is True and row["response_text"] == text
    assert row["completion_tokens"] == usage.completion_tokens


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"mock/echo", "mock/lorem"} <= ids


def test_errors_raise_the_sdks_own_exceptions(client, gateway_server):
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="mock/missing", messages=[{"role": "user", "content": "x"}])
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="mock/echo", messages=[{"role": "user", "content": "x"}], temperature=9)
    assert bad.value.code == "invalid_request" and bad.value.param == "temperature"
    wrong = OpenAI(base_url=gateway_server.url + "/v1", api_key="wrong-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.models.list()
    assert denied.value.code == "invalid_token"


def test_abandoned_stream_is_still_recorded(start_gateway, tokens):
    # a slow mock, so the client can leave in the middle
    server = start_gateway(CLASSROOM_MOCK_TTFT_MS="0", CLASSROOM_MOCK_TOKENS_PER_SECOND="20")
    client = OpenAI(base_url=server.url + "/v1", api_key=tokens["student_b"], max_retries=0)
    stream = client.chat.completions.create(
        model="mock/lorem", messages=[{"role": "user", "content": "go"}], stream=True
    )
    received = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
        if len(received) == 3:
            break
    stream.close()

    def finished() -> bool:
        rows = own_history(server, "student_b")
        return bool(rows) and rows[0]["status"] != "running"

    wait_until(finished, 30, "abandoned run finished")
    row = own_history(server, "student_b")[0]
    assert row["status"] == "error" and row["error_code"] == "client_disconnected"
    assert row["cost_status"] == "estimated"
    assert 3 <= row["completion_tokens"] < 24  # lorem is >= 24 tokens; we left early
    assert row["response_text"].startswith("".join(received).strip()[:10])
