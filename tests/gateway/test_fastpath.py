"""``POST /v1/chat/completions`` is served by a plain ASGI fast path (``gateway.edge.fastpath``)
in front of FastAPI. It must answer exactly as the FastAPI route behind it would: the same
status, headers that matter, body shape and history row, for good and bad requests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.config.settings import Settings
from gateway.edge.app import Edge, create_app, create_asgi

ROUTE = "/v1/chat/completions"
HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello there"}]}


def settings_in(tmp_path: Path, tokens_file: Path, name: str) -> Settings:
    return Settings(data_dir=tmp_path / name, auth_tokens_file=tokens_file,
                    tenants_dir=Path(__file__).parents[2] / "tenants", mock_ttft_ms=0,
                    mock_tokens_per_second=0, hub_api_url=None)


@pytest.fixture
def pair(tmp_path: Path, tokens_file: Path) -> Iterator[dict[str, TestClient]]:
    """The gateway as served (fast path) and the same gateway without the fast path."""
    fast = settings_in(tmp_path, tokens_file, "fast")
    slow = settings_in(tmp_path, tokens_file, "slow")
    served = create_asgi(fast)
    behind = Recorder(served.app.app)  # what reaches FastAPI behind the fast path
    served.app.app = behind
    plain = Edge(create_app(slow), slow.service_prefix, slow.max_body_bytes)
    with TestClient(served) as a, TestClient(plain) as b:
        a.reached_fastapi = behind.paths  # type: ignore[attr-defined]
        yield {"fast": a, "fastapi": b}


class Recorder:
    """The FastAPI app, noting the paths of the requests that reach it."""

    def __init__(self, app):
        self.app = app
        self.paths: list[str] = []

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def last_row(client: TestClient) -> dict:
    data_dir = client.app.app.state.services.settings.data_dir  # type: ignore[attr-defined]
    with sqlite3.connect(data_dir / "gateway.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("select * from runs order by id desc limit 1").fetchone()
    return dict(row) if row else {}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CASES = {
    "no token": (None, json.dumps(HELLO).encode(), {}),
    "wrong token": ("nope", json.dumps(HELLO).encode(), {}),
    "not json": ("student_a", b"{not json", {"Content-Type": "application/json"}),
    "invalid utf-8": ("student_a", b'{"model": "\xff"}', {"Content-Type": "application/json"}),
    "unknown model": ("student_a", json.dumps({**HELLO, "model": "gpt-9"}).encode(), {}),
    "negative max_tokens": ("student_a", json.dumps({**HELLO, "max_tokens": -1}).encode(), {}),
    "no messages": ("student_a", json.dumps({"model": "mock/echo"}).encode(), {}),
    "array body": ("student_a", b"[1, 2]", {}),
    "form content type": ("student_a", json.dumps(HELLO).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"}),
    "plain": ("student_a", json.dumps(HELLO).encode(), {}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_fast_path_answers_as_fastapi_does(pair, tokens, case):
    who, body, headers = CASES[case]
    answers = {}
    for name, client in pair.items():
        sent = dict(headers)
        if who is not None:
            sent.update(bearer(tokens.get(who, who)))
        response = client.post(ROUTE, content=body, headers=sent)
        payload = response.json()
        if response.status_code == 200:  # ids and times differ between two real calls
            payload = {k: v for k, v in payload.items() if k not in ("id", "created")}
        row = last_row(client)
        answers[name] = (
            response.status_code, response.headers["content-type"],
            response.headers.get("retry-after"), payload,
            (row.get("status"), row.get("error_code"), row.get("source"), row.get("model")),
        )
    assert answers["fast"] == answers["fastapi"]
    assert ROUTE not in pair["fast"].reached_fastapi  # the fast path answered, not FastAPI
    status, _, _, payload, row = answers["fast"]
    if case == "plain":
        assert status == 200 and payload["choices"][0]["message"]["content"]
        assert row == ("ok", None, "sdk", "mock/echo")
    else:
        assert status >= 400 and payload["error"]["code"] and payload["error"]["message"]


def test_streams_alike_and_source_header_is_recorded(pair, tokens):
    frames = {}
    for name, client in pair.items():
        headers = {**bearer(tokens["student_a"]), "X-Classroom-Source": "Widget"}
        with client.stream("POST", ROUTE, json={**HELLO, "stream": True},
                           headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            lines = [line for line in response.iter_lines() if line.startswith("data:")]
        assert lines[-1] == "data: [DONE]"
        text = "".join(
            (json.loads(line[5:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
            for line in lines[:-1]
        )
        row = last_row(client)
        frames[name] = (text, row["status"], row["source"], row["stream"])
    assert frames["fast"] == frames["fastapi"]
    assert ROUTE not in pair["fast"].reached_fastapi
    assert frames["fast"][1:] == ("ok", "widget", 1) and "hello there" in frames["fast"][0]


def test_unknown_source_is_the_sdk_and_other_methods_reach_fastapi(pair, tokens):
    client = pair["fast"]
    response = client.post(ROUTE, json=HELLO,
                           headers={**bearer(tokens["student_a"]), "X-Classroom-Source": "x"})
    assert response.status_code == 200 and last_row(client)["source"] == "sdk"
    refused = client.get(ROUTE, headers=bearer(tokens["student_a"]))
    assert client.reached_fastapi == [ROUTE]  # only the GET went on to FastAPI
    assert refused.status_code == 405
    assert refused.json()["error"]["code"] == "method_not_allowed"


def test_oversized_body_is_refused_in_the_openai_shape(tmp_path, tokens_file, tokens):
    settings = settings_in(tmp_path, tokens_file, "small")
    settings = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_asgi(settings)) as client:
        big = {**HELLO, "messages": [{"role": "user", "content": "x" * 5000}]}
        response = client.post(ROUTE, json=big, headers=bearer(tokens["student_a"]))
        # without a Content-Length (chunked), the limit is found while reading
        chunked = client.post(ROUTE, content=iter([json.dumps(big).encode()]),
                              headers={**bearer(tokens["student_a"]),
                                       "Content-Type": "application/json"})
    for refused in (response, chunked):
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "payload_too_large"
    assert "content-length" not in chunked.request.headers
