"""Saved conversations in process: create, branch, list, reopen, scope, refuse."""

from __future__ import annotations

import pytest

from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)


def auth(tokens, who="student_a"):
    return {"Authorization": f"Bearer {tokens[who]}"}


@pytest.fixture
def conv(gateway_client, tokens):
    response = gateway_client.post(
        "/api/conversations", json={"system_prompt": "Be brief.", "model": "mock/echo"},
        headers=auth(tokens),
    )
    assert response.status_code == 201, response.text
    return response.json()


def add(client, tokens, conv_id, role, content, parent=None, who="student_a", **extra):
    response = client.post(
        f"/api/conversations/{conv_id}/messages",
        json={"role": role, "content": content, "parent_message_id": parent, **extra},
        headers=auth(tokens, who),
    )
    return response


def test_create_then_messages_form_a_tree_with_branches(gateway_client, tokens, conv):
    assert conv["id"].startswith("conv_")
    assert conv["title"] is None and conv["message_count"] == 0
    q1 = add(gateway_client, tokens, conv["id"], "user", "What is a token?").json()
    a1 = add(gateway_client, tokens, conv["id"], "assistant", "A piece of text.", q1["id"],
             model="mock/echo", prompt_tokens=10, completion_tokens=4, cost_micro_usd=0).json()
    q2 = add(gateway_client, tokens, conv["id"], "user", "And a prompt?", a1["id"]).json()
    # Edit the first question: a sibling of q1, a new branch from the root.
    q1b = add(gateway_client, tokens, conv["id"], "user", "What is a model?").json()
    a1b = add(gateway_client, tokens, conv["id"], "assistant", "A program.", q1b["id"]).json()

    full = gateway_client.get(f"/api/conversations/{conv['id']}", headers=auth(tokens)).json()
    assert full["title"] == "What is a token?"  # from the first user message, kept
    assert full["model"] == "mock/echo" and full["system_prompt"] == "Be brief."
    order = [q1["id"], a1["id"], q2["id"], q1b["id"], a1b["id"]]
    assert [m["id"] for m in full["messages"]] == order
    assert full["current_leaf_id"] == a1b["id"]
    assert full["messages"][1]["cost_usd"] == 0.0 and full["messages"][1]["prompt_tokens"] == 10

    path = gateway_client.get(f"/api/conversations/{conv['id']}/path", headers=auth(tokens))
    assert [m["content"] for m in path.json()["items"]] == ["What is a model?", "A program."]
    old = gateway_client.get(f"/api/conversations/{conv['id']}/path", params={"leaf": q2["id"]},
                             headers=auth(tokens))
    assert [m["role"] for m in old.json()["items"]] == ["user", "assistant", "user"]


def test_list_is_newest_first_and_only_mine(gateway_client, tokens, conv):
    other = gateway_client.post("/api/conversations", json={"title": "Second"},
                                headers=auth(tokens)).json()
    add(gateway_client, tokens, conv["id"], "user", "bump " * 40)
    listing = gateway_client.get("/api/conversations", headers=auth(tokens)).json()
    assert [c["id"] for c in listing["items"]][:2] == [conv["id"], other["id"]]
    assert listing["items"][0]["message_count"] == 1
    assert listing["items"][0]["title"].endswith("…") and len(listing["items"][0]["title"]) <= 61
    assert listing["total"] == 2

    for who in ("student_a2", "student_b", "teacher_a", "teacher_b"):
        theirs = gateway_client.get("/api/conversations", headers=auth(tokens, who)).json()
        assert theirs["items"] == [] and theirs["total"] == 0
        if who == "teacher_a":
            continue  # reads the school's sessions, read-only: tests/gateway/test_sessions.py
        response = gateway_client.get(f"/api/conversations/{conv['id']}", headers=auth(tokens, who))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert add(gateway_client, tokens, conv["id"], "user", "hi", who=who).status_code == 404


def test_rename_and_delete(gateway_client, tokens, conv):
    add(gateway_client, tokens, conv["id"], "user", "hello")
    renamed = gateway_client.patch(f"/api/conversations/{conv['id']}", json={"title": "Greetings"},
                                   headers=auth(tokens))
    assert renamed.status_code == 200 and renamed.json()["title"] == "Greetings"
    empty = gateway_client.patch(f"/api/conversations/{conv['id']}", json={}, headers=auth(tokens))
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_request"
    gone = gateway_client.delete(f"/api/conversations/{conv['id']}", headers=auth(tokens))
    assert gone.status_code == 204
    again = gateway_client.get(f"/api/conversations/{conv['id']}", headers=auth(tokens))
    assert again.status_code == 404


def test_bad_messages_are_refused_in_words(gateway_client, tokens, conv):
    other = gateway_client.post("/api/conversations", json={}, headers=auth(tokens)).json()
    foreign = add(gateway_client, tokens, other["id"], "user", "elsewhere").json()
    wrong_parent = add(gateway_client, tokens, conv["id"], "assistant", "x", foreign["id"])
    assert wrong_parent.status_code == 400
    assert wrong_parent.json()["error"]["param"] == "parent_message_id"
    bad_role = add(gateway_client, tokens, conv["id"], "wizard", "x")
    assert bad_role.status_code == 422
    assert bad_role.json()["error"]["code"] == "invalid_request"
    assert "role" in bad_role.json()["error"]["message"]
    not_my_run = add(gateway_client, tokens, conv["id"], "assistant", "x", run_id=999_999)
    assert not_my_run.status_code == 400 and not_my_run.json()["error"]["param"] == "run_id"
    no_token = gateway_client.get("/api/conversations")
    assert no_token.status_code == 401


def test_a_message_linked_to_a_run_takes_the_recorded_metering(gateway_client, tokens, conv):
    reply = gateway_client.post(
        "/v1/chat/completions",
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "count me"}]},
        headers=auth(tokens),
    ).json()
    run = gateway_client.get("/api/history", params={"limit": 1}, headers=auth(tokens)).json()
    run_id = run["items"][0]["id"]
    message = add(gateway_client, tokens, conv["id"], "assistant",
                  reply["choices"][0]["message"]["content"], run_id=run_id,
                  prompt_tokens=999_999).json()
    assert message["prompt_tokens"] == reply["usage"]["prompt_tokens"]
    assert message["completion_tokens"] == reply["usage"]["completion_tokens"]
    assert message["model"] == "mock/echo" and message["run_id"] == run_id
    other_user = add(gateway_client, tokens, conv["id"], "assistant", "x", run_id=run_id,
                     who="student_a2")
    assert other_user.status_code == 404  # not their conversation, first of all


def test_refusals_are_decided_before_the_write(gateway_client, tokens, conv, monkeypatch):
    """A 4xx is found by a read: no write function of a refused request reaches the writer
    thread, where raising would fail (and re-run) every other write of its batch."""
    history = gateway_client.app.app.state.services.history  # type: ignore[attr-defined]
    submitted: list[object] = []
    submit = history._writer.submit

    def spy(fn):
        if fn.__module__ == "gateway.api.conversations":
            submitted.append(fn)
        return submit(fn)

    monkeypatch.setattr(history._writer, "submit", spy)
    other = gateway_client.post("/api/conversations", json={}, headers=auth(tokens)).json()
    foreign = add(gateway_client, tokens, other["id"], "user", "elsewhere").json()
    submitted.clear()
    refused = [
        add(gateway_client, tokens, "conv_missing", "user", "x"),
        add(gateway_client, tokens, conv["id"], "user", "x", foreign["id"]),
        add(gateway_client, tokens, conv["id"], "assistant", "x", run_id=999_999),
        add(gateway_client, tokens, conv["id"], "user", "x", who="student_a2"),
        gateway_client.patch(f"/api/conversations/{conv['id']}", json={"title": "t"},
                             headers=auth(tokens, "student_b")),
        gateway_client.delete("/api/conversations/conv_missing", headers=auth(tokens)),
    ]
    assert [r.status_code for r in refused] == [404, 400, 400, 404, 404, 404]
    assert "conv_missing" in refused[0].json()["error"]["message"]
    assert submitted == []
    assert add(gateway_client, tokens, conv["id"], "user", "fine").status_code == 201
    assert len(submitted) == 1  # the spy sees the writes that are made
