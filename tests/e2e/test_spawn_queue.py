"""The bell rings: more labs are asked for at once than the hub starts in parallel.

A real hub with ``CLASSROOM_PARALLEL_STARTS=2`` and six students asking within
a moment. Every lab must become ready with no failed spawn, the ones that
waited must start in the order they asked, never more than two starting at
once, and the spawn page's progress stream must tell a waiting student their
place as it moves. Order and limit are read from the outside: when each lab
process started (``/proc``) and when it began serving (the server file it
writes), not from the hub's counters; no assertion is about time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import running_hub
from tests.support.hub import Hub
from tests.support.lab_ui import sign_in
from tests.support.labs import (
    ask_in_order,
    lab_processes,
    make_class,
    server_model,
    serving_since,
    started_at,
)
from tests.support.procs import ARTIFACTS, wait_until

pytestmark = pytest.mark.e2e

PARALLEL = 2
STUDENTS = 6


@pytest.fixture(scope="module")
def queued_hub(reachable_tmp: Path) -> Iterator[Hub]:
    with running_hub(reachable_tmp, "queue", CLASSROOM_PARALLEL_STARTS=str(PARALLEL)) as hub:
        yield hub


def follow_progress(hub: Hub, token: str, name: str, events: list[dict]) -> None:
    """Read the spawn page's event stream for ``name`` until it says ready or failed."""
    with requests.get(f"{hub.api}/users/{name}/server/progress", stream=True, timeout=600,
                      headers={"Authorization": f"token {token}"}) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    return


@pytest.mark.browser
def test_more_labs_than_the_limit_all_start_in_order_and_none_fails(
    queued_hub: Hub, reachable_tmp: Path, browser: Any
) -> None:
    hub = queued_hub
    token = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
    names = make_class(hub, "school_a", STUDENTS, "bell", reachable_tmp)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    # Signed in to the hub's home, not the admin's own lab (which would join the line).
    sign_in(page, hub, hub.admin_user, hub.admin_password, "/hub/home")
    page.wait_for_url("**/hub/home")

    threads = ask_in_order(hub, token, names)
    last: list[dict] = []
    watcher = threading.Thread(target=follow_progress, args=(hub, token, names[-1], last))
    watcher.start()
    # The spawn page of the last one asked, as a browser shows it while it waits.
    try:
        page.goto(f"{hub.url}/hub/spawn-pending/{names[-1]}", wait_until="domcontentloaded")
        message = page.locator("#progress-message")
        message.filter(has_text="in line").wait_for(timeout=60_000)
        shown = message.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "spawn_queue_waiting.png"))
    finally:
        context.close()
    assert "You are number" in shown and "should be ready in about" in shown

    def all_done() -> bool:
        servers = [server_model(hub, token, n) for n in names]
        gone = [n for n, s in zip(names, servers, strict=True) if not s]
        assert gone == [], f"spawns failed: {gone}\n{hub.log()[-4000:]}"
        return all(s.get("ready") for s in servers)

    wait_until(all_done, 900, "every lab of the class", hub.process)
    watcher.join(timeout=120)
    for thread in threads:
        thread.join(timeout=120)
    hub.remember_children()

    # None failed: every student has exactly the one lab process that was started.
    pids = lab_processes(hub)
    assert sorted(pids) == sorted(names)
    assert "Giving up" not in hub.log() and "failed to start" not in hub.log()

    # From the outside: when each lab process started and when it began to serve.
    started = {n: started_at(pids[n]) for n in names}
    serving = {n: serving_since(hub.data_dir / "home" / n, pids[n]) for n in names}
    assert all(serving[n] is not None for n in names), serving
    for index, name in enumerate(names):
        # Lab number k (from 0) may start only after k - PARALLEL + 1 earlier labs serve:
        # true in the order asked, false for anyone who jumped the line.
        up_before = sum(1 for other in names if serving[other] < started[name])
        assert up_before >= index - PARALLEL + 1, (name, index, up_before)
        # Never more than PARALLEL starting at once.
        starting = [o for o in names if started[o] <= started[name] < serving[o]]
        assert len(starting) <= PARALLEL, (name, starting)

    # The hub granted the starts in the order they were asked for.
    queue = requests.get(f"{hub.api}/classroom/start-queue",
                         headers={"Authorization": f"token {token}"}, timeout=30).json()
    assert queue["granted"][-STUDENTS:] == names
    assert queue["failed"] == 0 and queue["waiting"] == [] and queue["parallel"] == PARALLEL

    # The last one asked saw its place in line, moving forward, then its lab ready.
    places = [e["queue"]["place"] for e in last if e.get("queue", {}).get("place")]
    assert places and places[0] >= 2, last
    assert places == sorted(places, reverse=True)
    assert any("in line" in e["message"] for e in last)
    assert last[-1].get("ready") is True, last[-1]


def test_a_teacher_starts_their_class_ahead_from_their_lab_one_lab_after_another(
    queued_hub: Hub, reachable_tmp: Path
) -> None:
    import asyncio

    from tests.support.kernel import RemoteKernel

    hub = queued_hub
    admin = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
    names = make_class(hub, "school_b", 3, "early", reachable_tmp)
    for teacher, school in (("teachb", "school_b"), ("teacha", "school_a")):
        hub.classroom("accounts", "add", "--tenant", school, "--role", "teacher",
                      "--password", f"{teacher}-pass-e2e-1", teacher)
    other = hub.token_for(hub.login("teacha", "teacha-pass-e2e-1"), "teacha")
    student = hub.token_for(hub.login(names[0], f"pw-{names[0]}-long-enough"), names[0])

    def start(token: str, body: dict) -> requests.Response:
        return requests.post(f"{hub.api}/classroom/class-start", json=body, timeout=120,
                             headers={"Authorization": f"token {token}"})

    refused = start(other, {"school": "school_b"})  # another school's teacher
    assert refused.status_code == 403 and "your own school" in refused.json()["message"]
    assert start(student, {"school": "school_b"}).status_code == 403
    assert all(not server_model(hub, admin, n) for n in names)  # nothing was started

    # The teacher, from a kernel in their own lab, with the lab's own token.
    teacher_session = hub.login("teachb", "teachb-pass-e2e-1")
    hub.start_server(admin, "teachb")

    async def from_the_teachers_lab(code: str) -> dict:
        kernel = RemoteKernel(f"{hub.url}/user/teachb", admin)
        await kernel.start()
        try:
            return json.loads((await kernel.execute(code)).text)
        finally:
            await kernel.shutdown()

    def run(coroutine: Any) -> Any:
        # Not on this thread: Playwright's sync API (the browser fixture) keeps a loop here.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    started = run(from_the_teachers_lab(
        "import json, classroom\nprint(json.dumps(classroom.start_class()))"))
    assert started["school"] == "school_b" and started["queued"] == names
    assert started["refused"] == {}

    wait_until(lambda: all(server_model(hub, admin, n).get("ready") for n in names), 600,
               "the class started ahead", hub.process)
    hub.remember_children()
    status = run(from_the_teachers_lab(
        "import json, classroom\nprint(json.dumps(classroom.class_status()))"))
    assert status["counts"] == {"ready": 3}
    assert [lab["name"] for lab in status["labs"]] == names

    # The teacher's page shows the class ready, and the nav bar links to it; a student
    # has neither.
    page = teacher_session.get(f"{hub.url}/hub/classroom/class", timeout=30)
    assert page.status_code == 200
    for name in names:
        assert f'data-name="{name}" data-state="ready"' in page.text
    assert 'href="/hub/classroom/class"' in page.text
    student_session = hub.login(names[1], f"pw-{names[1]}-long-enough")
    assert student_session.get(f"{hub.url}/hub/classroom/class", timeout=30).status_code == 403
    home = student_session.get(f"{hub.url}/hub/home", timeout=30).text
    assert "classroom/class" not in home

    # Staggered: one lab of the class started ahead at a time, seen from /proc.
    pids = lab_processes(hub)
    spans = sorted((started_at(pids[n]), serving_since(hub.data_dir / "home" / n, pids[n]))
                   for n in names)
    for (_, up), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert up is not None and up < next_start
