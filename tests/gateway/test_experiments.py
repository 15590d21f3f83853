"""Saved playground runs: each iteration a real chat call, the prompt hashed, reopened,
re-run, compared, deleted; who sees which; bad input."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)
from tests.gateway.test_sessions import auth, runs_of


def start(client: Any, tokens: dict[str, str], who: str = "student_a", **body: Any) -> Any:
    payload = {"model": "mock/echo", "system_prompt": "Be brief.", "user_prompt": "Say hi",
               "iterations": 3, **body}
    return client.post("/api/playground/runs", json=payload, headers=auth(tokens, who))


def test_a_run_is_saved_with_each_iteration_and_reopened(gateway_client, tokens):
    before = len(runs_of(gateway_client))
    response = start(gateway_client, tokens, params={"temperature": 0.5}, concurrency=2)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "done" and run["iterations"] == 3 and len(run["results"]) == 3
    assert [r["idx"] for r in run["results"]] == [0, 1, 2]
    assert {r["text"] for r in run["results"]} == {"Say hi"}
    assert run["summary"]["ok"] == 3 and run["summary"]["distinct_texts"] == 1
    assert len(run["prompt_hash"]) == 64 and run["params"] == {"temperature": 0.5}
    calls = runs_of(gateway_client)[before:]
    # Each iteration is one call on the ordinary path, with the numbers the result carries.
    assert sorted(r["call_run_id"] for r in run["results"]) == [c["id"] for c in calls]
    assert all(c["status"] == "ok" and c["user"] == "stu_a" for c in calls)
    assert [r["prompt_tokens"] for r in run["results"]] == [c["prompt_tokens"] for c in calls]

    again = gateway_client.get(f"/api/playground/runs/{run['id']}", headers=auth(tokens))
    assert again.json()["results"] == run["results"]
    listed = gateway_client.get("/api/playground/runs", headers=auth(tokens)).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_rerun_recognises_the_prompt_and_compare_shows_both(gateway_client, tokens):
    first = start(gateway_client, tokens).json()
    second = gateway_client.post(f"/api/playground/runs/{first['id']}/rerun",
                                 headers=auth(tokens))
    assert second.status_code == 201
    second = second.json()
    assert second["rerun_of"] == first["id"] and second["prompt_hash"] == first["prompt_hash"]
    assert second["same_prompt_runs"] == [first["id"]]
    other = start(gateway_client, tokens, user_prompt="Something else").json()
    assert other["prompt_hash"] != first["prompt_hash"] and other["same_prompt_runs"] == []
    compared = gateway_client.get(f"/api/playground/runs/{first['id']}/compare",
                                  params={"with": other["id"]}, headers=auth(tokens)).json()
    assert compared["same_prompt"] is False
    assert compared["texts"] == [["Say hi"] * 3, ["Something else"] * 3]
    by_hash = gateway_client.get("/api/playground/runs", params={
        "prompt_hash": first["prompt_hash"]}, headers=auth(tokens)).json()["items"]
    assert {r["id"] for r in by_hash} == {first["id"], second["id"]}


def test_a_refused_iteration_is_saved_with_its_error(gateway_client, tokens):
    run = start(gateway_client, tokens, model="gpt-no-such", iterations=2).json()
    assert run["status"] == "failed"
    assert {r["error_code"] for r in run["results"]} <= {"model_not_found", "model_not_allowed"}
    assert all(r["error_message"] for r in run["results"])


def test_who_sees_which_runs(gateway_client, tokens):
    run = start(gateway_client, tokens, iterations=1).json()
    for who in ("student_a2", "student_b", "teacher_b"):
        assert gateway_client.get(f"/api/playground/runs/{run['id']}",
                                  headers=auth(tokens, who)).status_code == 404
        assert gateway_client.delete(f"/api/playground/runs/{run['id']}",
                                     headers=auth(tokens, who)).status_code == 404
        assert gateway_client.post(f"/api/playground/runs/{run['id']}/rerun",
                                   headers=auth(tokens, who)).status_code == 404
    assert gateway_client.get(f"/api/playground/runs/{run['id']}",
                              headers=auth(tokens, "teacher_a")).status_code == 200
    listed = gateway_client.get("/api/playground/runs", params={"user": "stu_a"},
                                headers=auth(tokens, "teacher_a")).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]
    refused = gateway_client.get("/api/playground/runs", params={"user": "stu_a"},
                                 headers=auth(tokens, "student_a2"))
    assert refused.status_code == 403
    assert gateway_client.delete(f"/api/playground/runs/{run['id']}",
                                 headers=auth(tokens)).status_code == 204
    assert gateway_client.get(f"/api/playground/runs/{run['id']}",
                              headers=auth(tokens)).status_code == 404


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=st.one_of(st.text(max_size=40), st.just("<b>x</b>"), st.just("안녕")),
       iterations=st.one_of(st.integers(-5, 30), st.text(max_size=3)),
       concurrency=st.integers(-1, 9))
def test_odd_runs_are_refused_in_words(gateway_client, tokens, prompt, iterations, concurrency):
    response = start(gateway_client, tokens, user_prompt=prompt, iterations=iterations,
                     concurrency=concurrency)
    assert response.status_code in (201, 400, 422), response.text
    if response.status_code == 201:
        assert response.json()["user_prompt"] == prompt
    else:
        assert response.json()["error"]["message"]
