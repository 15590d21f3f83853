"""The whole classroom, end to end: a student's first lesson runs in their own lab,
through the real proxy to the gateway, and every call lands in the history."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest
import requests

from tests.e2e.conftest import data_dir_in
from tests.support.hub import descendants, start_hub
from tests.support.kernel import RemoteKernel
from tests.support.procs import ARTIFACTS, pid_alive, wait_until

pytestmark = pytest.mark.e2e

LESSON = "lessons/01_first_chat.ipynb"


def gateway_runs(hub, token, **params):
    response = requests.get(
        hub.gateway_url + "/api/runs", params=params,
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_lessons_are_copied_into_the_students_home(student):
    assert (student.home / LESSON).is_file()


def test_first_lesson_runs_in_the_students_own_lab(hub, admin_token, student):
    async def scenario():
        kernel = RemoteKernel(student.server_url, admin_token)
        await kernel.start(cwd="lessons")
        try:
            probe = await kernel.execute(
                "import os\n"
                "print('loaded' if 'classroom' in get_ipython().extension_manager.loaded else 'missing')\n"
                "print(os.environ['OPENAI_API_KEY'] == os.environ['CLASSROOM_API_TOKEN'] != '')\n"
                "print(os.environ['OPENAI_BASE_URL'])\n"
                "print(os.environ['JUPYTERHUB_USER'])"
            )
            results = await kernel.run_notebook(str(student.home / LESSON))
        finally:
            await kernel.shutdown()
        return probe, results

    probe, results = asyncio.run(scenario())
    lines = probe.text.split()
    assert lines[0] == "loaded"
    assert lines[1] == "True"
    assert lines[2] == hub.gateway_url + "/v1"
    assert lines[3] == student.name
    assert len(results) >= 4

    runs = gateway_runs(hub, admin_token, user=student.name, limit=200)
    assert runs, "the lesson made no gateway calls"
    assert {r["tenant"] for r in runs} == {"school_a"}
    assert {r["role"] for r in runs} == {"student"}
    ok = [r for r in runs if r["status"] == "ok"]
    assert {r["source"] for r in ok} >= {"sdk", "widget"}
    echo_sdk = [r for r in ok if r["model"] == "mock/echo" and r["source"] == "sdk"]
    assert {r["stream"] for r in echo_sdk} == {True, False}
    for run in ok:
        assert run["prompt_tokens"] > 0 and run["completion_tokens"] > 0
        assert run["cost_status"] == "priced" and run["cost_micro_usd"] == 0
    assert any(r["source"] == "widget" and r["stream"] for r in ok)


def test_lesson_calls_record_their_notebook_and_cell(hub, admin_token, student):
    """Lessons opened as JupyterLab opens them (a session per notebook, each execution with
    its cell's id): every call the official SDKs and the widgets make records the notebook
    and the cell, and lesson progress is exact."""
    lessons = [LESSON, "lessons/04_comparing_providers.ipynb"]

    async def scenario():
        for path in lessons:
            kernel = RemoteKernel(student.server_url, admin_token)
            await kernel.open_notebook(path)
            try:
                await kernel.run_notebook(str(student.home / path))
            finally:
                await kernel.shutdown()

    before = {r["id"] for r in gateway_runs(hub, admin_token, user=student.name, limit=500)}
    asyncio.run(scenario())
    fresh = [r for r in gateway_runs(hub, admin_token, user=student.name, limit=500)
             if r["id"] not in before]
    assert fresh, "the lessons made no gateway calls"
    for path in lessons:
        ids = [c["id"] for c in json.loads((student.home / path).read_text())["cells"]
               if c["cell_type"] == "code"]
        runs = [r for r in fresh if r["notebook"] == path]
        assert runs, path
        for run in runs:  # the cell that made it, at its place in the lesson
            assert run["cell"] in ids, run
            assert (run["cell_position"], run["cell_count"]) == (ids.index(run["cell"]) + 1,
                                                                 len(ids))
        if path == LESSON:
            assert {r["source"] for r in runs} >= {"sdk", "widget"}
        else:
            assert {r["api"] for r in runs} >= {"openai", "anthropic", "google"}
    assert {r["notebook"] for r in fresh} == set(lessons)

    response = requests.get(hub.gateway_url + "/api/lessons/progress",
                            params={"user": student.name},
                            headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
    assert response.status_code == 200, response.text
    progress = {r["lesson"]: r for r in response.json()["items"]}
    for path in lessons:
        runs = [r for r in fresh if r["notebook"] == path]
        latest = max(runs, key=lambda r: r["id"])
        row = progress[path]
        assert (row["last_cell"], row["last_position"]) == (latest["cell"],
                                                            latest["cell_position"])
        assert row["furthest_position"] == max(r["cell_position"] for r in runs)
        assert row["calls"] >= len(runs)


def test_student_cannot_read_another_students_runs(hub, student):
    # a student's own API token, made through the hub as the student
    token = hub.token_for(student.session, student.name, note="student self")
    response = requests.get(hub.gateway_url + "/api/runs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    me = requests.get(hub.gateway_url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert (me["name"], me["tenant"], me["role"]) == (student.name, "school_a", "student")


@pytest.mark.browser
def test_student_logs_in_and_sees_the_lesson_in_jupyterlab(hub, student, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(hub.url + "/hub/login", wait_until="domcontentloaded")
        page.fill("input[name=username]", student.name)
        page.fill("input[name=password]", student.password)
        page.click("[type=submit]")
        page.wait_for_url("**/user/stu1/lab**", timeout=90_000)
        page.locator(".jp-DirListing-item[title*='lessons'], .jp-DirListing-itemText:has-text('lessons')").first.wait_for(timeout=90_000)
        page.locator(".jp-DirListing-itemText:has-text('lessons')").first.dblclick()
        item = page.locator(".jp-DirListing-itemText:has-text('01_first_chat.ipynb')")
        item.first.wait_for(timeout=60_000)
        assert item.count() == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "student_lab_lessons.png"))
    finally:
        context.close()


def test_ctrl_c_stops_hub_proxy_gateway_and_labs(reachable_tmp):
    hub = start_hub(data_dir_in(reachable_tmp, "ctrl-c"))
    try:
        session = hub.login(hub.admin_user, hub.admin_password)
        token = hub.token_for(session, hub.admin_user)
        hub.start_server(token, hub.admin_user)
        started = descendants(hub.process.pid) | hub.spawner_pids()
        assert len(started) >= 3  # proxy, gateway, lab (at least)
        os.kill(hub.process.pid, signal.SIGINT)  # what Ctrl-C sends
        hub.process.wait(timeout=60)
        wait_until(lambda: not any(pid_alive(p) for p in started), 30, "children to exit")
        assert [p for p in started if pid_alive(p)] == []
    finally:
        leftovers = hub.stop()
    assert leftovers == []
