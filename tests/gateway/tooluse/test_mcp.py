"""MCP end to end: the classroom server with the official SDK's client; per-user
connections (headers sealed, never returned, owner only); the school's allow-list and
the guard at the API; the gateway as MCP client; a chat turn with one round of tool
calls, each call a history row; failures in words."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


class As:
    def __init__(self, gateway, token: str) -> None:
        self.url = gateway.url
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):
        def send(path: str, **kwargs) -> httpx.Response:
            return httpx.request(method.upper(), self.url + path, headers=self.headers,
                                 timeout=60, **kwargs)
        return send


@pytest.fixture
def student(mcp_gateway, tokens):
    return As(mcp_gateway, tokens["student_a"])


@pytest.fixture
def admin(mcp_gateway, tokens):
    return As(mcp_gateway, tokens["admin"])


def test_the_classroom_server_answers_the_official_client(mcp_server):
    async def run() -> dict:
        async with streamablehttp_client(mcp_server) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = [t.name for t in (await session.list_tools()).tools]
                results = {}
                for name, arguments in (
                        ("calculator", {"expression": "2 * (3 + 4) ^ 2"}),
                        ("convert_units", {"value": 100, "from_unit": "C", "to_unit": "F"}),
                        ("date_difference", {"start": "2026-01-01", "end": "2026-03-01"}),
                        ("add_days", {"date": "2024-02-28", "days": 1}),
                        ("encyclopedia_lookup", {"topic": "Model Context Protocol"}),
                        ("calculator", {"expression": "__import__('os').system('id')"}),
                        ("calculator", {"expression": "9 ** 9 ** 9"}),
                        ("current_time", {"timezone": "Mars/Olympus"})):
                    result = await session.call_tool(name, arguments)
                    results.setdefault(name, []).append(
                        (result.isError, result.structuredContent, result.content[0].text))
                return {"names": names, "results": results}

    found = asyncio.run(run())
    assert set(found["names"]) == {"calculator", "convert_units", "current_time",
                                   "date_difference", "add_days", "encyclopedia_lookup",
                                   "encyclopedia_search"}
    calc = found["results"]["calculator"]
    assert calc[0][0] is False and calc[0][1]["value"] == 98
    assert calc[1][0] is True and "Only numbers" in calc[1][2]
    assert calc[2][0] is True and "Exponents above" in calc[2][2]
    assert found["results"]["convert_units"][0][1]["result"] == 212
    assert found["results"]["date_difference"][0][1]["days"] == 59
    assert found["results"]["add_days"][0][1]["result"] == "2024-02-29"
    assert "open protocol" in found["results"]["encyclopedia_lookup"][0][1]["text"]
    assert found["results"]["current_time"][0][0] is True
    assert "Unknown time zone" in found["results"]["current_time"][0][2]


def test_connections_crud_secrets_sealed_and_owner_only(student, admin, mcp_gateway, tokens):
    refused = student.post("/api/mcp-connections", json={
        "name": "weather", "url": "https://mcp.weather.example/mcp"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "mcp_server_not_allowed"
    assert "not on your school's list" in refused.json()["error"]["message"]
    assert student.put("/api/mcp-allowlist", json={"entries": ["*"]}).status_code == 403
    listed = admin.put("/api/mcp-allowlist", json={
        "tenant": "school_a", "entries": ["https://mcp.weather.example"]})
    assert listed.status_code == 200, listed.text
    assert [e["entry"] for e in listed.json()["entries"]][-1] == "https://mcp.weather.example"
    seen = student.get("/api/mcp-allowlist").json()["entries"]
    assert seen[0]["source"] == "gateway" and seen[-1]["source"] == "school"
    made = student.post("/api/mcp-connections", json={
        "name": "weather", "url": "https://mcp.weather.example/mcp",
        "headers": {"Authorization": "Bearer sk-weather-SECRET-123"}})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["header_names"] == ["Authorization"] and "SECRET" not in made.text
    ident = body["id"]
    mine = student.get("/api/mcp-connections").json()["items"]
    assert [c["name"] for c in mine] == ["classroom", "weather"] and mine[0]["builtin"]
    assert "SECRET" not in json.dumps(mine)
    assert student.post("/api/mcp-connections", json={
        "name": "weather", "url": "https://mcp.weather.example/mcp"}).status_code == 409
    other = As(mcp_gateway, tokens["student_a2"])
    assert other.get(f"/api/mcp-connections/{ident}").status_code == 404
    assert other.delete(f"/api/mcp-connections/{ident}").status_code == 404
    changed = student.put(f"/api/mcp-connections/{ident}", json={"name": "forecast"})
    assert changed.json()["name"] == "forecast"
    assert changed.json()["header_names"] == ["Authorization"]
    database = mcp_gateway.data_dir / "gateway.sqlite"
    with sqlite3.connect(database) as db:
        sealed = db.execute("SELECT headers_enc FROM mcp_connections WHERE id = ?",
                            (ident,)).fetchone()[0]
    assert sealed and "SECRET" not in sealed
    assert student.put("/api/mcp-connections/0", json={"name": "x"}).status_code == 400
    assert student.delete(f"/api/mcp-connections/{ident}").status_code == 204
    assert student.get(f"/api/mcp-connections/{ident}").status_code == 404


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/mcp", "http://169.254.169.254/latest",
                                 "http://localhost:8000/", "http://[::1]:80/",
                                 "http://2130706433/", "http://10.0.0.5/mcp"])
def test_inside_addresses_stay_closed_on_an_open_list(student, admin, url):
    assert admin.put("/api/mcp-allowlist", json={"tenant": "school_a",
                                                 "entries": ["*"]}).status_code == 200
    made = student.post("/api/mcp-connections", json={"name": "inside", "url": url})
    if made.status_code == 201:  # the shape is allowed; the address is refused on use
        ident = made.json()["id"]
        tools = student.get(f"/api/mcp-connections/{ident}/tools")
        student.delete(f"/api/mcp-connections/{ident}")
        assert tools.status_code == 403, tools.text
        assert tools.json()["error"]["code"] == "mcp_server_not_allowed"
        assert "only when an admin has listed" in tools.json()["error"]["message"]
    else:
        assert made.status_code == 403 and "this machine" in made.json()["error"]["message"]


def test_the_builtin_connection_lists_and_calls_tools(student):
    listed = student.get("/api/mcp-connections/0/tools")
    assert listed.status_code == 200, listed.text
    tools = {t["name"]: t for t in listed.json()["tools"]}
    assert tools["calculator"]["input_schema"]["required"] == ["expression"]
    called = student.post("/api/mcp-connections/0/call", json={
        "tool": "convert_units", "arguments": {"value": 5, "from_unit": "km", "to_unit": "mi"}})
    assert called.status_code == 200 and called.json()["status"] == "ok"
    assert json.loads(called.json()["result"])["result"] == pytest.approx(3.1068559612)
    bad = student.post("/api/mcp-connections/0/call", json={"tool": "calculator",
                                                            "arguments": {}})
    assert bad.json()["status"] == "error" and "expression" in bad.json()["error"]
    rows = student.get("/api/tool-calls", params={"limit": 2}).json()["items"]
    assert [(r["tool"], r["status"]) for r in rows] == [("calculator", "error"),
                                                        ("convert_units", "ok")]
    assert all(r["duration_ms"] is not None and r["duration_ms"] >= 0 for r in rows)


def test_a_chat_turn_runs_one_round_of_tool_calls(student):
    turn = student.post("/api/mcp-connections/0/chat", json={
        "model": "mock/echo", "prompt": "calculator: 6 * 7, then current time"})
    assert turn.status_code == 200, turn.text
    body = turn.json()
    assert [c["tool"] for c in body["tool_calls"]] == ["calculator", "current_time"]
    assert all(c["status"] == "ok" for c in body["tool_calls"])
    assert json.loads(body["tool_calls"][0]["result"])["value"] == 42
    assert body["answer"].startswith("The tool calculator said: ")
    assert '"value": 42' in body["answer"]
    assert len(body["runs"]) == 2
    history = student.get("/api/history", params={"limit": 2}).json()["items"]
    assert {r["id"] for r in history} == set(body["runs"])
    assert all(r["status"] == "ok" and r["model"] == "mock/echo" for r in history)
    rows = student.get("/api/tool-calls", params={"run_id": body["runs"][0]}).json()["items"]
    assert sorted(r["tool"] for r in rows) == ["calculator", "current_time"]
    plain = student.post("/api/mcp-connections/0/chat", json={"model": "mock/echo",
                                                              "prompt": "just hello"})
    assert plain.json()["tool_calls"] == [] and plain.json()["answer"] == "just hello"
    assert len(plain.json()["runs"]) == 1


def test_a_tool_error_is_shown_recorded_and_given_to_the_model(student):
    turn = student.post("/api/mcp-connections/0/chat", json={
        "model": "mock/echo", "prompt": "calculator: 1/0"}).json()
    call = turn["tool_calls"][0]
    assert (call["status"], call["error"]) == ("error", "Error executing tool calculator: "
                                                        "Division by zero.")
    assert "Division by zero" in turn["answer"]


def test_a_server_that_is_down_or_silent_is_named_in_words(student, admin, silent_port):
    down = 1  # nothing listens on port 1
    assert admin.put("/api/mcp-allowlist", json={"tenant": "school_a", "entries": [
        f"http://127.0.0.1:{down}/mcp", f"http://127.0.0.1:{silent_port}/mcp"]}).status_code \
        == 200
    made = [student.post("/api/mcp-connections", json={
        "name": name, "url": f"http://127.0.0.1:{port}/mcp"}).json()["id"]
        for name, port in (("down", down), ("silent", silent_port))]
    try:
        gone = student.post(f"/api/mcp-connections/{made[0]}/chat",
                            json={"model": "mock/echo", "prompt": "calculator: 1"})
        assert gone.status_code == 502
        assert gone.json()["error"]["code"] == "mcp_server_error"
        assert "cannot be reached" in gone.json()["error"]["message"]
        quiet = student.post(f"/api/mcp-connections/{made[1]}/call",
                             json={"tool": "calculator", "arguments": {"expression": "1"}})
        assert quiet.json()["status"] == "timeout"
        assert "did not answer within 3 s" in quiet.json()["error"]
    finally:
        for ident in made:
            student.delete(f"/api/mcp-connections/{ident}")


def test_the_turn_goes_through_policy_like_any_call(student):
    refused = student.post("/api/mcp-connections/0/chat", json={
        "model": "no-such-model", "prompt": "calculator: 1"})
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"
    assert student.get("/api/history", params={"limit": 1}).json()["items"][0][
        "error_code"] == "model_not_found"
