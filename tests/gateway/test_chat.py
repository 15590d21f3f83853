"""The OpenAI-compatible chat endpoint in process: answers, streams, refusals, history."""

from __future__ import annotations

import json

import pytest

MSG = [{"role": "user", "content": "Hello, gateway!"}]


def auth(tokens, who="student_a"):
    return {"Authorization": f"Bearer {tokens[who]}"}


def history(client, tokens, who="student_a", **params):
    response = client.get("/api/history", headers=auth(tokens, who), params=params)
    assert response.status_code == 200
    return response.json()["items"]


def test_echo_answers_with_last_user_message_and_usage(gateway_client, tokens):
    body = {"model": "mock/echo", "messages": [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "What is 2 + 2?"},
    ]}
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens))
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "What is 2 + 2?", "refusal": None}
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["completion_tokens"] == 6  # What / is / 2 / + / 2 / ?
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_lorem_is_deterministic_and_respects_max_tokens(gateway_client, tokens):
    body = {"model": "mock/lorem", "messages": MSG}
    a = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens)).json()
    b = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens)).json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    assert len(a["choices"][0]["message"]["content"].split()) >= 20
    short = gateway_client.post(
        "/v1/chat/completions", json={**body, "max_tokens": 5}, headers=auth(tokens)
    ).json()
    assert short["usage"]["completion_tokens"] == 5
    assert short["choices"][0]["finish_reason"] == "length"


def parse_sse(text: str) -> list:
    events = []
    for block in text.strip().split("\n\n"):
        assert block.startswith("data: "), block
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_stream_without_usage_request_hides_usage(gateway_client, tokens):
    body = {"model": "mock/echo", "messages": MSG, "stream": True}
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello, gateway!"
    assert not any("usage" in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # ... but the gateway still metered it
    row = history(gateway_client, tokens)[0]
    assert row["stream"] is True and row["status"] == "ok"
    assert row["completion_tokens"] == 4 and row["cost_status"] == "priced"


def test_stream_with_include_usage_ends_with_usage_chunk(gateway_client, tokens):
    body = {"model": "mock/echo", "messages": MSG, "stream": True,
            "stream_options": {"include_usage": True}}
    events = parse_sse(gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens)).text)
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": MSG}, "model"),
        ({"model": "mock/echo"}, "messages"),
        ({"model": "mock/echo", "messages": []}, "messages"),
        ({"model": "mock/echo", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"model": "mock/echo", "messages": MSG, "temperature": 7}, "temperature"),
        ({"model": "mock/echo", "messages": MSG, "max_tokens": -3}, "max_tokens"),
        ({"model": "mock/echo", "messages": MSG, "n": "many"}, "n"),
    ],
)
def test_bad_bodies_name_the_field_and_leave_a_history_row(gateway_client, tokens, body, field):
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == field
    assert f"'{field}'" in error["message"]
    row = history(gateway_client, tokens)[0]
    assert row["status"] == "error" and row["error_code"] == "invalid_request"
    assert row["http_status"] == 400


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe\x00bad", "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_unparseable_bodies_are_400_in_words(gateway_client, tokens, raw, words):
    response = gateway_client.post(
        "/v1/chat/completions", content=raw,
        headers={**auth(tokens), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert words in response.json()["error"]["message"]


def test_oversized_body_is_413(gateway_client, tokens, gateway_settings):
    big = b"x" * (gateway_settings.max_body_bytes + 1)
    response = gateway_client.post("/v1/chat/completions", content=big, headers=auth(tokens))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_model_is_404_model_not_found_and_recorded(gateway_client, tokens):
    body = {"model": "mock/nonexistent", "messages": MSG}
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "mock/nonexistent" in error["message"]
    row = history(gateway_client, tokens)[0]
    assert (row["model"], row["status"], row["error_code"]) == (
        "mock/nonexistent", "error", "model_not_found"
    )


def test_model_outside_tenant_allow_list_is_403(gateway_client, tokens):
    # the default tenant does not allow gpt-4.1
    body = {"model": "gpt-4.1", "messages": MSG}
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens, "admin"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"


def test_allowed_model_without_a_key_is_no_key_available(gateway_client, tokens):
    body = {"model": "gpt-4o-mini", "messages": MSG}
    response = gateway_client.post("/v1/chat/completions", json=body, headers=auth(tokens))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_key_available"
    assert "mock/echo" in error["message"]


def test_models_lists_only_usable_models_with_metadata(gateway_client, tokens):
    data = gateway_client.get("/v1/models", headers=auth(tokens)).json()
    assert data["object"] == "list"
    ids = {m["id"] for m in data["data"]}
    assert {"mock/echo", "mock/lorem"} <= ids
    assert "gpt-4o-mini" not in ids  # no openai key configured
    echo = next(m for m in data["data"] if m["id"] == "mock/echo")
    assert echo["provider"] == "mock" and echo["streaming"] is True
    assert echo["context_window"] > 0


def test_history_is_own_only_newest_first_and_filterable(gateway_client, tokens):
    for who, text in (("student_a", "mine 1"), ("student_b", "theirs"), ("student_a", "mine 2")):
        gateway_client.post(
            "/v1/chat/completions", headers=auth(tokens, who),
            json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]},
        )
    gateway_client.post("/v1/chat/completions", headers=auth(tokens),
                        json={"model": "mock/nope", "messages": MSG})
    mine = history(gateway_client, tokens)
    assert [r["request_text"] for r in mine][:3] == [MSG[0]["content"], "mine 2", "mine 1"]
    assert {r["user"] for r in mine} == {"stu_a"}
    assert {r["tenant"] for r in mine} == {"school_a"}
    ok = history(gateway_client, tokens, status="ok")
    assert [r["request_text"] for r in ok] == ["mine 2", "mine 1"]
    assert history(gateway_client, tokens, model="mock/nope")[0]["error_code"] == "model_not_found"
    page = gateway_client.get("/api/history", headers=auth(tokens), params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [r["request_text"] for r in page["items"]] == ["mine 2"]
    theirs_id = history(gateway_client, tokens, "student_b")[0]["id"]
    response = gateway_client.get(f"/api/history/{theirs_id}", headers=auth(tokens))
    assert response.status_code == 404


def test_history_bad_query_is_422_naming_the_parameter(gateway_client, tokens):
    response = gateway_client.get("/api/history", headers=auth(tokens), params={"limit": 0})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["param"] == "limit"


def test_widget_source_header_is_recorded(gateway_client, tokens):
    gateway_client.post(
        "/v1/chat/completions", json={"model": "mock/echo", "messages": MSG},
        headers={**auth(tokens), "X-Classroom-Source": "widget"},
    )
    assert history(gateway_client, tokens)[0]["source"] == "widget"


def test_served_under_the_hub_service_prefix(gateway_client, tokens):
    response = gateway_client.get("/services/gateway/api/me", headers=auth(tokens))
    assert response.status_code == 200 and response.json()["name"] == "stu_a"
    assert gateway_client.get("/services/gateway/health").json()["status"] == "ok"


def test_openapi_documents_chat_body(gateway_client):
    spec = gateway_client.get("/openapi.json").json()
    op = spec["paths"]["/v1/chat/completions"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert "messages" in schema["required"]


def test_metrics_count_runs_by_status(gateway_client, tokens):
    gateway_client.post("/v1/chat/completions", json={"model": "mock/echo", "messages": MSG}, headers=auth(tokens))
    gateway_client.post("/v1/chat/completions", json={"model": "x-unknown", "messages": MSG}, headers=auth(tokens))
    text = gateway_client.get("/metrics").text
    assert 'classroom_gateway_runs{status="ok"} 1' in text
    assert 'classroom_gateway_runs{status="error"} 1' in text


def test_runs_are_scoped_teacher_to_school_admin_to_all(gateway_client, tokens):
    for who in ("student_a", "student_b"):
        gateway_client.post("/v1/chat/completions", headers=auth(tokens, who),
                            json={"model": "mock/echo", "messages": MSG})

    def users(who, **params):
        response = gateway_client.get("/api/runs", headers=auth(tokens, who), params=params)
        return response.status_code, {r["user"] for r in response.json().get("items", [])}

    assert users("teacher_a") == (200, {"stu_a"})
    assert users("teacher_a", tenant="school_b")[0] == 403
    assert users("admin") == (200, {"stu_a", "stu_b"})
    assert users("admin", tenant="school_b") == (200, {"stu_b"})
    status, _ = users("student_a")
    assert status == 403
