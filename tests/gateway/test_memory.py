"""Memory entries: CRUD with filters, injection into replies (visible, per reply), the three
modes, auto extraction, summaries, who sees what, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.history.memory import keywords_of
from gateway.services.sessions import MEMORY_HEADER, extract
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)
from tests.gateway.test_sessions import auth, new_session, send


def add(client: Any, tokens: dict[str, str], who: str = "student_a", **body: Any) -> Any:
    return client.post("/api/memory", json=body, headers=auth(tokens, who))


def listing(client: Any, tokens: dict[str, str], who: str = "student_a", **params: Any
            ) -> list[dict[str, Any]]:
    response = client.get("/api/memory", params=params, headers=auth(tokens, who))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_crud_and_filters(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    other = new_session(gateway_client, tokens)
    fact = add(gateway_client, tokens, session=s["id"], content="The student likes chemistry.")
    assert fact.status_code == 201, fact.text
    fact = fact.json()
    assert fact["scope"] == "session" and fact["type"] == "fact" and fact["importance"] == 3
    assert fact["keywords"] == ["student", "likes", "chemistry"] and fact["origin"] == "user"
    shared = add(gateway_client, tokens, scope="shared", type="preference",
                 content="Short answers.", importance=5).json()
    add(gateway_client, tokens, session=other["id"], type="instruction", content="Be formal.")
    assert {e["id"] for e in listing(gateway_client, tokens, session=s["id"])} == {fact["id"]}
    assert [e["id"] for e in listing(gateway_client, tokens, scope="shared")] == [shared["id"]]
    assert [e["content"] for e in listing(gateway_client, tokens, type="instruction")] == [
        "Be formal."]
    assert len(listing(gateway_client, tokens)) == 3

    patched = gateway_client.patch(f"/api/memory/{fact['id']}",
                                   json={"content": "Likes physics.", "importance": 4},
                                   headers=auth(tokens))
    assert patched.status_code == 200 and patched.json()["keywords"] == ["likes", "physics"]
    assert gateway_client.get(f"/api/memory/{fact['id']}", headers=auth(tokens)
                              ).json()["importance"] == 4
    assert gateway_client.delete(f"/api/memory/{fact['id']}",
                                 headers=auth(tokens)).status_code == 204
    gone = gateway_client.get(f"/api/memory/{fact['id']}", headers=auth(tokens))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    # Deleting a session deletes its session memory, not the shared entries.
    gateway_client.delete(f"/api/conversations/{other['id']}", headers=auth(tokens))
    assert [e["id"] for e in listing(gateway_client, tokens)] == [shared["id"]]


def test_injection_is_recorded_per_reply_and_disabled_injects_nothing(gateway_client, tokens):
    s = new_session(gateway_client, tokens, system_prompt="Be brief.")
    mine = add(gateway_client, tokens, session=s["id"], type="instruction",
               content="Answer in French.", importance=5).json()
    shared = add(gateway_client, tokens, scope="shared", content="The student is 15.").json()
    add(gateway_client, tokens, who="student_a2", scope="shared", content="Not yours.")
    reply = send(gateway_client, tokens, s["id"], "hello").json()["assistant_message"]
    ctx = reply["context"]
    assert [e["id"] for e in ctx["memory"]] == [mine["id"], shared["id"]]  # by importance
    expected = f"{MEMORY_HEADER}\n- [instruction] Answer in French.\n- [fact] The student is 15."
    assert ctx["memory_text"] == expected
    assert ctx["messages"][:2] == [{"role": "system", "content": "Be brief."},
                                   {"role": "system", "content": expected}]
    # The model really read it: the mock counts the memory block in the prompt.
    bare = new_session(gateway_client, tokens, system_prompt="Be brief.",
                       memory_mode="disabled")
    plain = send(gateway_client, tokens, bare["id"], "hello").json()["assistant_message"]
    assert plain["context"]["memory"] == [] and plain["context"]["memory_text"] is None
    assert reply["prompt_tokens"] > plain["prompt_tokens"]
    # Read back later, the stored reply still says what it was given.
    saved = gateway_client.get(f"/api/conversations/{s['id']}", headers=auth(tokens)).json()
    assert saved["messages"][-1]["context"]["memory_text"] == expected


def test_keywords_rank_entries_of_equal_importance(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    about_cats = add(gateway_client, tokens, session=s["id"], content="Felix is a tabby cat.",
                     keywords=["felix", "cat"]).json()
    newer = add(gateway_client, tokens, session=s["id"], content="Paris is in France.").json()
    ctx = send(gateway_client, tokens, s["id"], "Tell me about felix").json()[
        "assistant_message"]["context"]
    assert [e["id"] for e in ctx["memory"]] == [about_cats["id"], newer["id"]]


def test_auto_mode_extracts_deterministically_and_entries_can_be_deleted(gateway_client,
                                                                         tokens):
    s = new_session(gateway_client, tokens, memory_mode="auto")
    first = send(gateway_client, tokens, s["id"],
                 "My name is Ada. I prefer examples in Python. Always cite sources.").json()
    added = first["memory_added"]
    assert [(e["type"], e["content"]) for e in added] == [
        ("fact", "The user's name is Ada."),
        ("preference", "The user prefers examples in Python."),
        ("instruction", "Always cite sources."),
    ]
    assert all(e["origin"] == "auto" and e["source_message_ids"] == [first["user_message"]["id"]]
               for e in added)
    again = send(gateway_client, tokens, s["id"], "My name is Ada.").json()
    assert again["memory_added"] == []  # already known
    ctx = again["assistant_message"]["context"]
    assert {e["id"] for e in ctx["memory"]} == {e["id"] for e in added}
    gateway_client.delete(f"/api/memory/{added[1]['id']}", headers=auth(tokens))
    ctx = send(gateway_client, tokens, s["id"], "next").json()["assistant_message"]["context"]
    assert added[1]["id"] not in {e["id"] for e in ctx["memory"]}
    # explicit mode never adds on its own
    quiet = new_session(gateway_client, tokens)
    assert send(gateway_client, tokens, quiet["id"], "My name is Bob.").json()[
        "memory_added"] == []


def test_summarize_a_branch_into_an_entry(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    one = send(gateway_client, tokens, s["id"], "What is an atom?").json()
    send(gateway_client, tokens, s["id"], "And a molecule?")
    summary = gateway_client.post("/api/memory/summarize", json={
        "session": s["id"], "message_id": one["assistant_message"]["id"]},
        headers=auth(tokens))
    assert summary.status_code == 201, summary.text
    entry = summary.json()
    assert entry["type"] == "summary" and entry["origin"] == "summary"
    assert entry["content"] == "Asked: What is an atom?. Last answer: What is an atom?"
    assert entry["source_message_ids"] == [one["user_message"]["id"],
                                           one["assistant_message"]["id"]]
    empty = new_session(gateway_client, tokens)
    refused = gateway_client.post("/api/memory/summarize", json={"session": empty["id"]},
                                  headers=auth(tokens))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"


def test_who_sees_which_entries(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    entry = add(gateway_client, tokens, session=s["id"], content="Private note.").json()
    for who in ("student_a2", "student_b", "teacher_b"):
        assert listing(gateway_client, tokens, who) == []
        seen = gateway_client.get(f"/api/memory/{entry['id']}", headers=auth(tokens, who))
        assert seen.status_code == 404
        assert gateway_client.delete(f"/api/memory/{entry['id']}",
                                     headers=auth(tokens, who)).status_code == 404
        # nor attach an entry to someone else's session
        assert add(gateway_client, tokens, who, session=s["id"], content="x").status_code == 404
    # The school's teacher reads, read-only.
    assert [e["id"] for e in listing(gateway_client, tokens, "teacher_a", user="stu_a")] == [
        entry["id"]]
    assert gateway_client.get(f"/api/memory/{entry['id']}",
                              headers=auth(tokens, "teacher_a")).status_code == 200
    assert gateway_client.patch(f"/api/memory/{entry['id']}", json={"content": "changed"},
                                headers=auth(tokens, "teacher_a")).status_code == 404
    assert listing(gateway_client, tokens, "teacher_b", user="stu_a") == []
    refused = gateway_client.get("/api/memory", params={"user": "stu_a"},
                                 headers=auth(tokens, "student_a2"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_extraction_and_keywords_are_plain_functions():
    assert extract("remember that water boils at 100 C") == [
        ("fact", 4, "Water boils at 100 C.")]
    assert extract("hello there") == []
    assert keywords_of("Привет, мир! Привет again, München, 東京都の大学") == [
        "привет", "münchen", "東京都の大学"]
    assert keywords_of("the the the") == []


odd = st.one_of(st.text(max_size=40), st.sampled_from(
    ["<img src=x onerror=alert(1)>", "\u0000", "ᚠᛇᚻ", "😀" * 30, "a" * 2001, " ", ""]))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=odd, type=st.one_of(st.sampled_from(["fact", "summary"]), odd),
       scope=st.one_of(st.just("shared"), odd),
       importance=st.one_of(st.integers(-10**20, 10**20), odd))
def test_odd_entries_are_stored_exactly_or_refused_clearly(gateway_client, tokens, content,
                                                           type, scope, importance):
    response = add(gateway_client, tokens, content=content, type=type, scope=scope,
                   importance=importance)
    assert response.status_code in (201, 400, 404, 422), response.text
    if response.status_code == 201:
        stored = gateway_client.get(f"/api/memory/{response.json()['id']}",
                                    headers=auth(tokens)).json()
        assert stored["content"] == content and stored["type"] == type
    else:
        error = response.json()["error"]
        assert error["code"] in ("invalid_request", "not_found") and error["message"]


@pytest.mark.parametrize("path", ["/api/memory/mem_nope", "/api/memory/<b>x</b>",
                                  "/api/memory/" + "9" * 300])
def test_unknown_entries_are_404(gateway_client, tokens, path):
    response = gateway_client.get(path, headers=auth(tokens))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
