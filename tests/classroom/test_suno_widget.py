"""The Suno widget against a real gateway with the seed's Suno accounts: it shows the
student's assigned account with the password hidden until *Reveal password*, says so when
none is assigned, and makes music with ``mock/music`` through the jobs API."""

from __future__ import annotations

import io
import json
import wave

import httpx
import pytest
from classroom import GatewayClient, Suno

from tests.support import secrets

PASSWORD = "suno-widget-pw-4418"


@pytest.fixture(scope="module")
def suno_gateway(start_gateway):
    secrets.remember(PASSWORD)
    return start_gateway(
        CLASSROOM_SUNO_ACCOUNTS_JSON=json.dumps([
            {"id": 0, "email": "", "password": "", "memo": "배정 없음"},
            {"id": 1, "email": "music1@example.com", "password": PASSWORD, "memo": "Band room"},
        ]),
        CLASSROOM_MOCK_JOB_SECONDS="0.2", CLASSROOM_JOB_POLL_SECONDS="0.05",
    )


def client_for(server, who):
    return GatewayClient(server.url, server.tokens[who])


def test_a_student_sees_their_account_and_reveals_the_password(suno_gateway, clean_env):
    admin = httpx.put(f"{suno_gateway.url}/api/suno/assignments/stu_a",
                      headers={"Authorization": f"Bearer {suno_gateway.tokens['admin']}"},
                      json={"account_id": 1, "tenant": "school_a"})
    assert admin.status_code == 200, admin.text
    with client_for(suno_gateway, "student_a") as client:
        widget = Suno(client=client)
        assert widget.disabled_reason is None
        shown = widget.account_box.value
        assert "music1@example.com" in shown and "Band room" in shown and "suno.com" in shown
        assert PASSWORD not in shown and PASSWORD not in widget.password_box.value
        assert widget.reveal_button.layout.display is None
        widget.reveal_button.click()
        assert widget.wait(30) and widget.last_error is None, widget.error_box.text
        assert PASSWORD in widget.password_box.value and widget.revealed == PASSWORD
    entries = httpx.get(f"{suno_gateway.url}/api/audit",
                        headers={"Authorization": f"Bearer {suno_gateway.tokens['admin']}"},
                        params={"action": "suno.reveal"}).json()["items"]
    assert [(e["actor"], e["target"]) for e in entries] == [("stu_a", "stu_a")]


def test_without_an_assignment_the_widget_says_so(suno_gateway, clean_env):
    with client_for(suno_gateway, "student_a2") as client:
        widget = Suno(client=client)
        assert "No Suno account is assigned to you" in widget.account_box.value
        assert widget.reveal_button.layout.display == "none"
        assert "music1@example.com" not in widget.account_box.value


def test_the_widget_makes_music_offline(suno_gateway, clean_env):
    with client_for(suno_gateway, "student_a2") as client:
        widget = Suno(client=client, model="mock/music")
        widget.duration.value = 5
        data = widget.generate("a cheerful marching tune")
        with wave.open(io.BytesIO(data)) as clip:
            assert clip.getnframes() == 5 * clip.getframerate()
        assert widget.last_job["status"] == "succeeded"
        assert widget.player.children and widget.player.children[0].format == "wav"
        run = client.get(f"/api/history/{widget.last_job['run_id']}")
        assert (run["kind"], run["status"], run["source"]) == ("music", "ok", "widget")


def test_a_school_without_music_sees_why(suno_gateway, clean_env):
    with client_for(suno_gateway, "student_b") as client:
        widget = Suno(client=client)
        assert widget.disabled_reason is not None and "'music'" in widget.disabled_reason
