"""The live views (``classroom.widgets.live``) on a real gateway of their own (pauses stay
here): a refresh asked by the page shows a fresh call; asks closer than the interval are
answered once (the clock is moved, not waited for); pause and resume buttons act at once,
and the gateway then refuses (and again serves) the student; who may not pause gets no
buttons, and the gateway's refusal is shown in words. The page side (the ticker stops
with the page) is tested in a real browser in tests/e2e/test_safe_views.py."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from classroom import GatewayClient
from classroom.widgets.live import ClassActivity, KeyPoolLive


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def gateway(start_gateway: Any) -> Any:
    return start_gateway()


def client(gateway: Any, who: str) -> GatewayClient:
    return GatewayClient(gateway.url, gateway.tokens[who])


def call(gateway: Any, who: str, text: str = "hello") -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {gateway.tokens[who]}"},
                      json={"model": "mock/echo", "messages": [{"role": "user", "content": text}]})


def shown(widget: Any) -> str:
    """The text of an HTML widget's value, tags taken out."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.unescape(str(widget.value)))).strip()


def test_a_tick_from_the_page_refreshes_and_shows_a_fresh_call(
    gateway: Any, clean_env: Any
) -> None:
    clock = Clock()
    live = ClassActivity(client=client(gateway, "teacher_a"), interval=3, clock=clock)
    assert live.refreshes == 1 and "Live: updated" in shown(live.status)
    before = live.last["activity"]["window"]["requests"]

    assert call(gateway, "student_a2", "<b>fresh</b>").status_code == 200
    clock.now += 1  # a second view asks again at once: answered by the last refresh
    live.ticker._handle_custom_msg({"tick": 1}, [])
    assert live.refreshes == 1

    clock.now += 3
    live.ticker._handle_custom_msg({"tick": 2}, [])
    assert live.refreshes == 2
    assert live.last["activity"]["window"]["requests"] == before + 1
    assert f"{before + 1} in the window" in shown(live.cards)
    assert "stu_a2" in {u["user"] for u in live.last["activity"]["active_users"]}
    assert live.chart.figure.data[0].y[-1] >= 1  # the per-minute chart was redrawn
    assert "stu_b" not in str(live.last)  # another school's student never shows


def test_pause_and_resume_buttons_act_at_once(gateway: Any, clean_env: Any) -> None:
    live = ClassActivity(client=client(gateway, "teacher_a"), interval=3)
    assert live.can_pause
    live.student.value = "stu_a2"
    live.pause_student.click()
    assert shown(live.message) == "Paused stu_a2: their calls wait until you resume them."
    assert "stu_a2 (paused by teach_a)" in shown(live.pauses)
    refused = call(gateway, "student_a2")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "paused_by_teacher"
    assert call(gateway, "student_a").status_code == 200  # the rest of the class works on

    live.resume_student.click()
    assert shown(live.message) == "Resumed stu_a2."
    assert shown(live.pauses) == "Nobody is paused."
    assert call(gateway, "student_a2").status_code == 200

    live.pause_class.click()
    assert call(gateway, "student_a").status_code == 403
    live.resume_class.click()
    assert shown(live.message) == "Resumed the whole class."
    assert call(gateway, "student_a").status_code == 200

    live.student.value = ""
    live.pause_student.click()  # no name: said, and nothing paused
    assert "Type the username" in live.error_box.text
    assert live.client.get("/api/pauses")["pauses"] == []


def test_students_get_no_buttons_and_a_teacher_cannot_pause_another_school(
    gateway: Any, clean_env: Any
) -> None:
    mine = ClassActivity(client=client(gateway, "student_a"), interval=3)
    assert not mine.can_pause and not hasattr(mine, "pause_student")
    assert {u["user"] for u in mine.last["activity"]["active_users"]} <= {"stu_a"}

    other = ClassActivity(client=client(gateway, "teacher_b"), interval=3, tenant="school_a")
    assert other.refreshes == 0  # the gateway refused to show school_a
    assert "403" in other.error_box.text or "school" in other.error_box.text
    with pytest.raises(Exception, match="teacher of that school"):
        other.pause(None)


def test_key_pool_live_for_admins_and_refused_in_words_for_others(
    gateway: Any, clean_env: Any
) -> None:
    pool = KeyPoolLive(client=client(gateway, "admin"), interval=3)
    assert pool.refreshes == 1 and "keys in rotation" in shown(pool.cards)
    refused = KeyPoolLive(client=client(gateway, "teacher_a"), interval=3)
    assert refused.refreshes == 0
    assert "administrators" in refused.error_box.text


def test_start_the_class_button_for_the_schools_teachers_only_and_outside_a_hub_in_words(
    gateway: Any, clean_env: Any
) -> None:
    """Outside a hub (no JUPYTERHUB_API_URL) the teacher's cards say why the labs' state is
    not known, and the button says so in words (the real hub:
    tests/e2e/test_class_start_widget.py)."""
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"):
        clean_env.delenv(name, raising=False)
    teacher = ClassActivity(client=client(gateway, "teacher_a"), interval=3)
    assert teacher.can_start_class and teacher.refreshes == 1  # the rest of the view is drawn
    assert "labs' state is not known" in shown(teacher.labs)
    assert "classroom's hub" in shown(teacher.labs)
    teacher.start_labs.click()
    assert "classroom's hub" in teacher.error_box.text and not teacher.start_labs.disabled

    for who, tenant in (("student_a", None), ("teacher_b", "school_a")):
        view = ClassActivity(client=client(gateway, who), interval=3, tenant=tenant)
        assert not view.can_start_class and not hasattr(view, "start_labs")
