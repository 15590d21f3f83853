"""Sessions: stateful completion through the chat path, context building and trimming,
branches, chains and trees, per-session totals, teachers' read-only view, bad input."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)


def auth(tokens: dict[str, str], who: str = "student_a") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


def new_session(client: Any, tokens: dict[str, str], who: str = "student_a", **fields: Any
                ) -> dict[str, Any]:
    body = {"model": "mock/echo", "system_prompt": "Be brief.", **fields}
    response = client.post("/api/conversations", json=body, headers=auth(tokens, who))
    assert response.status_code == 201, response.text
    return response.json()


def send(client: Any, tokens: dict[str, str], sid: str, content: str, who: str = "student_a",
         **extra: Any) -> Any:
    return client.post(f"/api/conversations/{sid}/send", json={"content": content, **extra},
                       headers=auth(tokens, who))


def runs_of(client: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from gateway.history.models import runs
    services = client.app.app.state.services
    with services.history.engine.connect() as c:
        return [dict(r) for r in c.execute(select(runs).order_by(runs.c.id)).mappings()]


def test_send_builds_the_context_calls_the_chat_path_and_stores_both(gateway_client, tokens):
    s = new_session(gateway_client, tokens, alias="tutor", params={"temperature": 0.2})
    assert s["alias"] == "tutor" and s["memory_mode"] == "explicit"
    assert s["params"] == {"temperature": 0.2}
    first = send(gateway_client, tokens, s["id"], "What is a token?")
    assert first.status_code == 200, first.text
    reply = first.json()
    user, answer = reply["user_message"], reply["assistant_message"]
    assert answer["content"] == "What is a token?"  # mock/echo repeats the last user message
    assert answer["parent_message_id"] == user["id"] and user["parent_message_id"] is None
    assert answer["model"] == "mock/echo" and answer["response_ms"] is not None
    run = runs_of(gateway_client)[-1]
    # One ordinary history row of the chat path, with the numbers the message carries.
    assert run["id"] == answer["run_id"] == user["run_id"]
    assert run["user"] == "stu_a" and run["status"] == "ok" and run["kind"] == "chat"
    assert answer["prompt_tokens"] == run["prompt_tokens"] > 0
    assert answer["completion_tokens"] == run["completion_tokens"] > 0
    sent = answer["context"]["messages"]
    assert sent == [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is a token?"}]

    second = send(gateway_client, tokens, s["id"], "And a prompt?").json()
    ctx = second["assistant_message"]["context"]
    assert [m["content"] for m in ctx["messages"]] == [
        "Be brief.", "What is a token?", "What is a token?", "And a prompt?"]
    assert ctx["included_message_ids"] == [user["id"], answer["id"]]
    assert ctx["dropped_message_ids"] == []
    assert second["user_message"]["parent_message_id"] == answer["id"]


def test_reply_to_an_earlier_message_branches_and_chain_and_tree_show_it(gateway_client,
                                                                         tokens):
    s = new_session(gateway_client, tokens)
    a = send(gateway_client, tokens, s["id"], "one").json()
    send(gateway_client, tokens, s["id"], "two")
    # Reply to the first answer again: a sibling of "two".
    b = send(gateway_client, tokens, s["id"], "two again",
             parent_message_id=a["assistant_message"]["id"]).json()
    ctx = b["assistant_message"]["context"]
    assert [m["content"] for m in ctx["messages"]][1:] == ["one", "one", "two again"]

    chain = gateway_client.get(
        f"/api/conversations/{s['id']}/messages/{b['assistant_message']['id']}/chain",
        headers=auth(tokens)).json()["items"]
    assert [m["content"] for m in chain] == ["one", "one", "two again", "two again"]

    tree = gateway_client.get(f"/api/conversations/{s['id']}/tree", headers=auth(tokens)).json()
    assert len(tree["roots"]) == 1
    first_answer = tree["roots"][0]["children"][0]
    assert [c["content"] for c in first_answer["children"]] == ["two", "two again"]
    assert tree["totals"]["requests"] == 3 and tree["totals"]["errors"] == 0

    fresh = send(gateway_client, tokens, s["id"], "from the top", new_branch=True).json()
    assert fresh["user_message"]["parent_message_id"] is None


def test_trimming_drops_the_oldest_messages_by_the_documented_rule(gateway_client, tokens):
    s = new_session(gateway_client, tokens, system_prompt=None, context_limit=60)
    for n in range(6):
        assert send(gateway_client, tokens, s["id"], f"message number {n} " + "word " * 5
                    ).status_code == 200
    last = send(gateway_client, tokens, s["id"], "last").json()["assistant_message"]
    ctx = last["context"]
    assert ctx["budget_tokens"] == 60 and ctx["prompt_tokens_estimate"] <= 60
    assert ctx["dropped_message_ids"], "a 60-token cap must drop something"
    full = gateway_client.get(f"/api/conversations/{s['id']}", headers=auth(tokens)).json()
    ids = [m["id"] for m in full["messages"]][:-2]  # the branch before "last"
    # What was kept is the newest contiguous part of the branch; what was dropped is older.
    kept = ctx["included_message_ids"]
    assert ids[-len(kept):] == kept and ctx["dropped_message_ids"] == ids[:-len(kept)]
    # The model was really sent what the reply says: the mock's prompt count agrees.
    assert last["prompt_tokens"] <= 60

    tight = new_session(gateway_client, tokens, context_limit=16)
    refused = send(gateway_client, tokens, tight["id"], "word " * 50)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"


def test_a_failed_call_leaves_the_message_and_a_history_row(gateway_client, tokens):
    s = new_session(gateway_client, tokens, model="gpt-no-such-model")
    before = len(runs_of(gateway_client))
    failed = send(gateway_client, tokens, s["id"], "hello")
    code = failed.json()["error"]["code"]
    assert failed.status_code in (403, 404) and code in ("model_not_allowed", "model_not_found")
    rows = runs_of(gateway_client)
    assert len(rows) == before + 1 and rows[-1]["status"] == "error"
    full = gateway_client.get(f"/api/conversations/{s['id']}", headers=auth(tokens)).json()
    [message] = full["messages"]
    assert message["content"] == "hello" and message["status"] == "error"
    assert message["error_code"] == code == rows[-1]["error_code"]
    assert message["context"]["messages"][-1] == {"role": "user", "content": "hello"}
    # The next message does not continue from the failed one.
    ok = send(gateway_client, tokens, s["id"], "again", model="mock/echo").json()
    assert ok["user_message"]["parent_message_id"] is None


def test_streamed_send_relays_sse_and_stores_the_reply(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    with gateway_client.stream("POST", f"/api/conversations/{s['id']}/send",
                               json={"content": "stream me please", "stream": True},
                               headers=auth(tokens)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    stored = json.loads(events[-2])
    assert stored["object"] == "classroom.session.reply"
    deltas = "".join(
        (c.get("delta") or {}).get("content") or ""
        for e in events[:-2] for c in json.loads(e).get("choices", []))
    assert deltas == "stream me please" == stored["assistant_message"]["content"]
    full = gateway_client.get(f"/api/conversations/{s['id']}", headers=auth(tokens)).json()
    assert [m["content"] for m in full["messages"]] == ["stream me please"] * 2
    run = runs_of(gateway_client)[-1]
    assert run["stream"] and stored["assistant_message"]["completion_tokens"] == \
        run["completion_tokens"]


def test_session_estimate_and_totals_count_only_that_session(gateway_client, tokens):
    a = new_session(gateway_client, tokens)
    b = new_session(gateway_client, tokens)
    for _ in range(2):
        send(gateway_client, tokens, a["id"], "alpha beta")
    send(gateway_client, tokens, b["id"], "gamma")
    est = gateway_client.get("/api/usage/estimate", params={"session": a["id"]},
                             headers=auth(tokens))
    assert est.status_code == 200, est.text
    body = est.json()
    assert body["filters"]["session"] == a["id"]
    totals = gateway_client.get(f"/api/conversations/{a['id']}", headers=auth(tokens)
                                ).json()["totals"]
    assert totals["requests"] == 2
    runs = [r for r in runs_of(gateway_client)]
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in runs[:2])
    # Someone else's session is not theirs to estimate.
    other = gateway_client.get("/api/usage/estimate", params={"session": a["id"]},
                               headers=auth(tokens, "student_a2"))
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"


def test_teacher_reads_the_school_sessions_read_only(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    send(gateway_client, tokens, s["id"], "hi")
    listing = gateway_client.get("/api/conversations", params={"user": "stu_a"},
                                 headers=auth(tokens, "teacher_a")).json()
    assert [c["id"] for c in listing["items"]] == [s["id"]]
    assert listing["items"][0]["user"] == "stu_a"
    for path in ("", "/tree", "/path"):
        seen = gateway_client.get(f"/api/conversations/{s['id']}{path}",
                                  headers=auth(tokens, "teacher_a"))
        assert seen.status_code == 200, (path, seen.text)
    # Read-only: the teacher cannot write into it, send into it, or delete it.
    assert gateway_client.patch(f"/api/conversations/{s['id']}", json={"title": "x"},
                                headers=auth(tokens, "teacher_a")).status_code == 404
    assert send(gateway_client, tokens, s["id"], "hi", who="teacher_a").status_code == 404
    assert gateway_client.delete(f"/api/conversations/{s['id']}",
                                 headers=auth(tokens, "teacher_a")).status_code == 404
    # Another school's teacher, and students, see nothing.
    for who in ("teacher_b", "student_a2", "student_b"):
        assert gateway_client.get(f"/api/conversations/{s['id']}/tree",
                                  headers=auth(tokens, who)).status_code == 404
    refused = gateway_client.get("/api/conversations", params={"user": "stu_a"},
                                 headers=auth(tokens, "student_a2"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    refused = gateway_client.get("/api/conversations", params={"tenant": "school_a"},
                                 headers=auth(tokens, "teacher_b"))
    assert refused.status_code == 403


odd_text = st.one_of(
    st.text(min_size=1, max_size=50),
    st.sampled_from(["<script>alert(1)</script>", "\u202e\u0000", "日本語のテキスト",
                     "مرحبا", "x" * 300]),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["alias", "memory_mode", "context_limit", "params", "model"]),
       value=st.one_of(odd_text, st.integers(min_value=-10**20, max_value=10**20),
                       st.none(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)))
def test_odd_session_fields_are_a_clear_4xx_never_a_500(gateway_client, tokens, field, value):
    response = gateway_client.post("/api/conversations", json={field: value},
                                   headers=auth(tokens))
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code != 201:
        error = response.json()["error"]
        assert error["code"] in ("invalid_request", "validation_error") and error["message"]
    else:
        assert response.json()[field if field != "params" else "params"] is not None or \
            value is None or field == "params"


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=odd_text, parent=st.one_of(st.none(), odd_text))
def test_odd_send_bodies_are_answered_or_refused_clearly(gateway_client, tokens, content, parent):
    s = new_session(gateway_client, tokens)
    response = send(gateway_client, tokens, s["id"], content, parent_message_id=parent)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        stored = response.json()
        assert stored["user_message"]["content"] == content
        # What is stored is what the model answered (its own history row says).
        run = runs_of(gateway_client)[-1]
        assert run["id"] == stored["assistant_message"]["run_id"]
        assert stored["assistant_message"]["content"] == (run["response_text"] or "")
    else:
        assert response.json()["error"]["message"]
