"""Every lesson, run top to bottom as a student in their own spawned lab, on the mock models.

One hub for the module. Each lesson runs in a fresh kernel of the student's lab
(reached through the hub's proxy), exactly as in class; a cell that raises
fails the test. The calls must land in the gateway's history as that student.
"""

from __future__ import annotations

import asyncio

import pytest
import requests

from tests.support.kernel import RemoteKernel
from tests.support.procs import REPO

pytestmark = pytest.mark.e2e

LESSONS = sorted(p.name for p in (REPO / "notebooks" / "lessons").glob("*.ipynb"))


def test_all_lessons_are_in_the_students_home(student):
    assert sorted(p.name for p in (student.home / "lessons").glob("*.ipynb")) == LESSONS
    assert len(LESSONS) == 10


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_in_the_students_lab(hub, admin_token, student, lesson):
    async def scenario():
        kernel = RemoteKernel(student.server_url, admin_token)
        await kernel.start(cwd="lessons")
        try:
            return await kernel.run_notebook(str(student.home / "lessons" / lesson),
                                             timeout_per_cell=120)
        finally:
            await kernel.shutdown()

    results = asyncio.run(scenario())
    assert results
    text = "\n".join(r.text for r in results)
    assert "Traceback" not in text

    response = requests.get(hub.gateway_url + "/api/runs",
                            params={"user": student.name, "limit": 500},
                            headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)
    runs = response.json()["items"]
    assert runs and {r["tenant"] for r in runs} == {"school_a"}
    assert {r["role"] for r in runs} == {"student"}
