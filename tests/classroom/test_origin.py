"""The kernel says which notebook and cell each call came from (classroom._origin): on every
request httpx sends to the gateway, from the official SDKs as from the classroom client,
and never to another host. Run in a fresh interpreter with a real IPython shell, as a
kernel loads the extension (httpx not yet imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from classroom._origin import code_cells, notebook_path

GATEWAY = "http://127.0.0.1:9/services/gateway"

SCRIPT = r'''
import asyncio, json, sys
from IPython.core.interactiveshell import InteractiveShell
import classroom

shell = InteractiveShell.instance()
classroom.load_ipython_extension(shell)
assert "httpx" not in sys.modules  # hooked when imported, not imported at start
seen = []
shell.run_cell("""
import httpx, httpx2, openai, anthropic

def answer(request):
    seen.append({"url": str(request.url), **{k: v for k, v in request.headers.items()
                                            if k.startswith("x-classroom")}})
    if "anthropic" in str(request.url):
        return httpx.Response(200, json={"id": "m", "type": "message", "role": "assistant",
            "model": "mock/echo", "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}})
    return httpx.Response(200, json={"object": "list", "data": []})

def answer2(request):
    reply = answer(request)
    return httpx2.Response(reply.status_code, content=reply.content,
                           headers={"content-type": "application/json"})

transport = httpx.MockTransport(answer)
openai.OpenAI(http_client=httpx.Client(transport=transport)).models.list()
# anthropic sends with httpx2, a fork of httpx under its own name
anthropic.Anthropic(http_client=httpx2.Client(transport=httpx2.MockTransport(answer2))).messages.create(
    model="mock/echo", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
httpx.Client(transport=transport).get("http://elsewhere.example/v1/models")
""", cell_id="cell-b")
shell.run_cell("""
import asyncio

async def go():
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await client.get(GATEWAY + "/api/me")
asyncio.run(go())
""", cell_id="not-in-the-file")
shell.run_cell("""
import aiohttp  # google-genai's async calls

async def started(session, context, params):
    seen.append({"url": str(params.url), **{k.lower(): v for k, v in params.headers.items()
                                            if k.lower().startswith("x-classroom")}})

async def go_aiohttp():
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        try:
            await session.post(GATEWAY + "/google/v1beta/models/m:generateContent", json={})
        except aiohttp.ClientError:
            pass  # nothing listens there; the request was made

asyncio.run(go_aiohttp())
""", cell_id="cell-c")
# Outside any cell (a widget's button): the notebook only.
httpx_mod = sys.modules["httpx"]
httpx_mod.Client(transport=httpx_mod.MockTransport(shell.user_ns["answer"])).get(GATEWAY + "/x")
print(json.dumps(seen))
'''


def run_kernel(tmp_path: Path, session: str) -> list[dict[str, str]]:
    home = tmp_path / "home"
    (home / "lessons").mkdir(parents=True)
    cells = [{"cell_type": "markdown", "id": "intro", "metadata": {}, "source": "# L"}] + [
        {"cell_type": "code", "id": cid, "metadata": {}, "source": "", "outputs": [],
         "execution_count": None} for cid in ("cell-a", "cell-b", "cell-c")
    ]
    (home / "lessons" / "été <1>.ipynb").write_text(json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC"))}
    env.update(HOME=str(home), CLASSROOM_GATEWAY_URL=GATEWAY, CLASSROOM_API_TOKEN="tok-x",
               JPY_SESSION_NAME=session.format(home=home))
    script = f"GATEWAY = {GATEWAY!r}\n" + SCRIPT.replace(
        "seen = []", "seen = []\nshell.user_ns.update(seen=seen, GATEWAY=GATEWAY)")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120, cwd=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sdk_and_client_calls_carry_the_notebook_and_cell_to_the_gateway_only(tmp_path):
    seen = run_kernel(tmp_path, "{home}/lessons/été <1>.ipynb")
    where = {"x-classroom-notebook": "lessons/%C3%A9t%C3%A9%20%3C1%3E.ipynb"}
    in_cell = {**where, "x-classroom-cell": "cell-b", "x-classroom-cell-position": "2/3"}
    assert seen == [
        {"url": f"{GATEWAY}/v1/models", **in_cell},  # openai
        {"url": f"{GATEWAY}/anthropic/v1/messages", **in_cell},  # anthropic
        {"url": "http://elsewhere.example/v1/models"},  # another host hears nothing
        {"url": f"{GATEWAY}/api/me", **where, "x-classroom-cell": "not-in-the-file"},  # async
        {"url": f"{GATEWAY}/google/v1beta/models/m:generateContent", **where,  # aiohttp
         "x-classroom-cell": "cell-c", "x-classroom-cell-position": "3/3"},
        {"url": f"{GATEWAY}/x", **where},  # outside a cell
    ]


def test_a_kernel_without_a_session_sends_nothing(tmp_path):
    seen = run_kernel(tmp_path, "")
    assert all(set(call) == {"url"} for call in seen) and len(seen) == 6


def test_the_notebook_is_named_from_the_home(tmp_path):
    home = tmp_path
    assert notebook_path({"JPY_SESSION_NAME": f"{home}/lessons/a.ipynb"}, home) == "lessons/a.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": "lessons/a.ipynb"}, home) == "lessons/a.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": "/srv/x/a.ipynb"}, home) == "srv/x/a.ipynb"
    assert notebook_path({}, home) is None


def test_the_outline_follows_the_saved_file(tmp_path):
    path = tmp_path / "n.ipynb"
    for ids in (["a", "b"], ["a", "new", "b"]):
        cells = [{"cell_type": "code", "id": i, "source": ""} for i in ids]
        path.write_text(json.dumps({"cells": cells}))
        os.utime(path, (len(ids), len(ids)))  # a new mtime for each save
        assert code_cells(path) == ids
    path.write_text("not json")
    os.utime(path, (9, 9))
    assert code_cells(path) == [] and code_cells(tmp_path / "missing.ipynb") == []
