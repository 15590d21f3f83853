"""A teacher starts the class's labs from the live dashboard, in a real browser.

A real hub; a teacher of school_a opens a notebook with ``ClassActivity()`` in
their own lab in Chromium and presses "Start the class's labs". The kernel
asks the hub with the lab's own token (``custom:classroom:start`` filtered to
the teacher's school, granted through ``c.Spawner.server_token_scopes``); the
widget says what it asked for at once and its cards then follow the labs until
every student's lab is ready. The labs' state is read from the hub's REST API
too, not only from the widget. A student of the class, in their own lab, gets
no button, and the hub refuses them when they call it anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import running_hub
from tests.support.hub import Hub
from tests.support.lab_ui import in_kernel, run_all, shut_down_kernels, sign_in
from tests.support.labs import make_class, server_model
from tests.support.procs import ARTIFACTS, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCHOOL = "school_a"
TEACHER, TEACHER_PASSWORD = "teachlive", "teachlive-pass-e2e-1"
NOTEBOOK = "class_now.ipynb"


@pytest.fixture(scope="module")
def live_hub(reachable_tmp: Path) -> Iterator[Hub]:
    with running_hub(reachable_tmp, "livestart") as hub:
        yield hub


def notebook(*cells: str) -> dict[str, Any]:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": source} for source in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def test_a_teacher_starts_the_class_from_the_live_dashboard_and_a_student_cannot(
    live_hub: Hub, reachable_tmp: Path, browser: Any
) -> None:
    hub = live_hub
    admin = hub.token_for(hub.login(hub.admin_user, hub.admin_password), hub.admin_user)
    names = make_class(hub, SCHOOL, 3, "live", reachable_tmp)
    hub.classroom("accounts", "add", "--tenant", SCHOOL, "--role", "teacher",
                  "--password", TEACHER_PASSWORD, TEACHER)
    hub.login(TEACHER, TEACHER_PASSWORD)  # the hub knows a user from their first sign-in
    hub.start_server(admin, TEACHER)
    # Saved through the lab's own contents API, so it is the teacher's file.
    saved = requests.put(f"{hub.url}/user/{TEACHER}/api/contents/{NOTEBOOK}", timeout=60,
                         headers={"Authorization": f"token {admin}"},
                         json={"type": "notebook", "format": "json", "content": notebook(
                             "from classroom.widgets.live import ClassActivity\n"
                             "live = ClassActivity()\nlive")})
    assert saved.status_code in (200, 201), saved.text
    assert all(not server_model(hub, admin, n) for n in names)

    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    try:
        sign_in(page, hub, TEACHER, TEACHER_PASSWORD, "/hub/home")
        ran = run_all(page, hub, TEACHER, admin, NOTEBOOK)
        assert "Traceback" not in ran.stderr, ran.stderr
        labs = page.locator(".classroom-labs")
        labs.wait_for(timeout=60_000)
        assert "of 3 students" in labs.inner_text()  # before: the class is stopped
        page.get_by_role("button", name="Start the class's labs").click()

        result = page.locator(".classroom-pause-result", has_text="Asked the hub")
        result.wait_for(timeout=120_000)
        said = result.inner_text()
        assert "Asked the hub to start 3 lab(s) of school_a" in said, said

        # The hub starts them (seen from its REST API) and the cards follow.
        wait_until(lambda: all(server_model(hub, admin, n).get("ready") for n in names), 600,
                   "the class's labs started from the widget", hub.process)
        hub.remember_children()
        ready = page.locator(".classroom-labs .classroom-card-value").first
        page.wait_for_function(
            "() => document.querySelector('.classroom-labs .classroom-card-value')"
            "?.textContent.trim() === '3'", timeout=60_000)
        assert ready.inner_text().strip() == "3"
        page.screenshot(path=str(ARTIFACTS / "class_start_widget.png"), full_page=True)
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "class_start_widget_failed.png"), full_page=True)
        raise
    finally:
        context.close()
        shut_down_kernels(hub, admin, TEACHER)

    # A student of the class, in their own (now running) lab: no button, and the hub
    # refuses the same call made by hand with the student's lab token.
    out = in_kernel(hub, names[0], admin, (
        "import json\nfrom classroom.widgets.live import ClassActivity\n"
        "from classroom.classstart import start_class\nfrom classroom import GatewayError\n"
        "live = ClassActivity()\n"
        "try:\n    start_class('school_a')\n    refused = None\n"
        "except GatewayError as error:\n    refused = [error.code, str(error)]\n"
        "print(json.dumps({'button': hasattr(live, 'start_labs'),"
        " 'can': live.can_start_class, 'refused': refused}))"))
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["button"] is False and seen["can"] is False
    assert seen["refused"][0] == "forbidden", seen
    assert "teachers" in seen["refused"][1]
