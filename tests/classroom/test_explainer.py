"""The error explainer: every gateway error code is explained, and "Explain more" asks a model."""

from __future__ import annotations

import httpx
import pytest
from classroom import Chat, GatewayClient, Playground, explain
from classroom._explainer import KNOWN_ERRORS

from gateway.errors import all_error_classes

URL = "http://gateway.test"


def test_every_code_the_gateway_can_send_is_in_the_table():
    codes = {cls.code for cls in all_error_classes()} - {"internal_error", "client_disconnected",
                                                           "conflict"}
    assert codes - set(KNOWN_ERRORS) == set()


@pytest.mark.parametrize("code", ["rate_limited", "quota_exceeded", "budget_exceeded",
                                  "content_blocked", "invalid_request", "context_length_exceeded",
                                  "invalid_token", "no_key_available", "provider_auth_failed"])
def test_each_known_error_says_what_it_means_and_what_to_do(code):
    e = explain(code)
    assert e.code == code and e.title and e.meaning and e.todo
    assert "What to do:" in str(e) and "<b>What it means:</b>" in e.html()


def test_backoff_is_taught_for_rate_limits():
    assert "exponential backoff" in explain("rate_limited").todo
    assert "Retry-After" in explain("provider_rate_limited").todo


def answering(status: int, code: str, message: str) -> GatewayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/me":
            return httpx.Response(200, json={"name": "s", "role": "student",
                                             "enabled_features": ["chat", "playground"]})
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "mock/echo", "provider": "mock",
                                                       "kind": "chat"}]})
        body = {"error": {"message": message, "type": "x", "code": code, "param": None}}
        return httpx.Response(status, json=body, headers={"retry-after": "3"})

    return GatewayClient(URL, "tok", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (429, "rate_limited", "Too many requests"),
        (429, "budget_exceeded", "The budget is spent"),
        (400, "content_blocked", "safety filter"),
        (400, "invalid_request", "A parameter is not valid"),
        (400, "context_length_exceeded", "context window"),
        (502, "provider_auth_failed", "refused by the provider"),
        (503, "no_key_available", "No provider key is free"),
        (403, "paused_by_teacher", "Paused by your teacher"),
    ],
)
def test_a_widget_shows_the_explanation_of_every_error(status, code, words):
    pg = Playground(client=answering(status, code, "the gateway's words"), model="mock/echo",
                    prompt="hello")
    with pytest.raises(Exception):  # noqa: B017 - the GatewayError itself is checked below
        pg.run(iterations=1)
    assert pg.error_box.explanation is not None and pg.error_box.explanation.code == code
    shown = pg.error_box.message.value
    assert words in shown and "What it means:" in shown and "What to do:" in shown
    assert pg.error_box.more_button.layout.display is None  # "Explain more" is offered
    assert pg.error_box.layout.display is None


def test_explain_more_asks_a_cheap_model_through_the_gateway(make_client, recorder,
                                                             history_ids, gateway_server):
    chat = Chat(client=make_client(transport=recorder))
    chat.model = "no-such-model"
    with pytest.raises(Exception):  # noqa: B017
        chat.send("hi")
    answer = chat.error_box.explain_more()
    assert answer  # mock/lorem writes placeholder text, but it did answer
    asked = recorder.bodies("/chat/completions")[-1]
    assert asked["model"] == "mock/lorem" and "model_not_found" in asked["messages"][-1]["content"]
    assert chat.error_box.more.value
    runs = history_ids(gateway_server.tokens["student_a"]).values()
    assert any(r["model"] == "mock/lorem" and r["source"] == "widget" for r in runs)


def test_explain_more_button_runs_in_the_background(make_client):
    chat = Chat(client=make_client())
    chat.model = "no-such-model"
    with pytest.raises(Exception):  # noqa: B017
        chat.send("hi")
    chat.error_box.more_button.click()
    chat.error_box._more_thread.join(30)
    assert "Asking a model" not in chat.error_box.more.value and chat.error_box.more.value


def test_a_problem_the_student_can_fix_has_no_explain_more(make_client):
    chat = Chat(client=make_client())
    chat.message_box.value = ""
    chat.send_button.click()
    assert chat.error_box.text == "Type a message first, then press Send."
    assert chat.error_box.more_button.layout.display == "none"
