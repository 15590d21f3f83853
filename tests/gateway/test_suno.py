"""Suno accounts (the seed platform's Suno tab) and music jobs, through the gateway.

Accounts come from ``CLASSROOM_SUNO_ACCOUNTS_JSON`` in the seed's shape (or a file),
are sealed at rest, never appear in an answer but the reveal to the person they are
assigned to, and every assignment and reveal is in the audit log. Music jobs
(``mock/music``) run through the same identity, policy, metering and history as every
other job and make a real WAV.
"""

from __future__ import annotations

import io
import json
import sqlite3
import wave

import pytest
from fastapi.testclient import TestClient

from gateway.config.settings import Settings
from gateway.edge.app import create_asgi
from gateway.services.suno import SunoAccountsError, declared_accounts
from tests.gateway.test_media import auth, run_job
from tests.support import secrets

PASSWORDS = ("suno-pw-Alpha-7731", "suno-pw-Bravo-5519")
SEED = [
    {"id": 0, "email": "", "password": "", "memo": "배정 없음"},
    {"id": 1, "email": "class1@example.com", "password": PASSWORDS[0], "memo": "계정 1"},
    {"id": 2, "email": "class2@example.com", "password": PASSWORDS[1], "memo": "Room 204"},
]


@pytest.fixture
def client(gateway_settings):
    secrets.remember(*PASSWORDS)
    settings = gateway_settings.model_copy(update={
        "suno_accounts_json": json.dumps(SEED, ensure_ascii=False),
        "mock_job_seconds": 0.2, "job_poll_seconds": 0.02, "mock_media_ms": 0})
    with TestClient(create_asgi(settings)) as client:
        client.settings = settings
        yield client


def audit(client, tokens, action):
    found = client.get("/api/audit", headers=auth(tokens, "admin"),
                       params={"action": action}).json()["items"]
    return [(e["actor"], e["action"], e["target"], json.loads(e["details"])
             if isinstance(e["details"], str) else e["details"]) for e in found]


def test_seed_shape_is_read_and_the_password_is_sealed_at_rest(client, tokens):
    listed = client.get("/api/suno/accounts", headers=auth(tokens, "admin"))
    assert listed.status_code == 200
    items = listed.json()["items"]
    # row 0 of the seed ("no assignment") is not an account
    assert [(a["id"], a["email"], a["memo"]) for a in items] == [
        (1, "class1@example.com", "계정 1"), (2, "class2@example.com", "Room 204")]
    assert not any(p in listed.text for p in PASSWORDS)
    files = list(client.settings.data_dir.glob("*.sqlite*"))
    raw = b"".join(p.read_bytes() for p in files)  # the database and its WAL
    assert raw and not any(p.encode() in raw for p in PASSWORDS)
    with sqlite3.connect(client.settings.database_url.removeprefix("sqlite:///")) as db:
        sealed = [r[0] for r in db.execute("SELECT password_enc FROM suno_accounts")]
    assert len(sealed) == 2 and not any(p in s for s in sealed for p in PASSWORDS)


def test_assign_show_reveal_and_audit(client, tokens):
    none = client.get("/api/suno/me", headers=auth(tokens)).json()
    assert none["assigned"] is False and "No Suno account" in none["message"]
    assert client.post("/api/suno/me/reveal", headers=auth(tokens)).status_code == 404

    put = client.put("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
                     json={"account_id": 2, "tenant": "school_a"})
    assert put.status_code == 200 and put.json()["account"]["email"] == "class2@example.com"
    assert PASSWORDS[1] not in put.text

    mine = client.get("/api/suno/me", headers=auth(tokens))
    body = mine.json()
    assert body["assigned"] is True and body["account"]["email"] == "class2@example.com"
    assert body["account"]["memo"] == "Room 204" and "suno.com" in body["how_to_use"]
    assert PASSWORDS[1] not in mine.text

    revealed = client.post("/api/suno/me/reveal", headers=auth(tokens))
    assert revealed.status_code == 200 and revealed.json()["password"] == PASSWORDS[1]
    assert revealed.headers["cache-control"] == "no-store"

    assert audit(client, tokens, "suno.assign") == [
        ("root_admin", "suno.assign", "stu_a", {"account_id": 2, "previous_account_id": None})]
    assert audit(client, tokens, "suno.reveal") == [
        ("stu_a", "suno.reveal", "stu_a", {"account_id": 2})]

    # taken back: the person sees none again, and that is audited too
    gone = client.delete("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
                         params={"tenant": "school_a"})
    assert gone.status_code == 200
    assert client.get("/api/suno/me", headers=auth(tokens)).json()["assigned"] is False
    assert audit(client, tokens, "suno.unassign")[0][3] == {
        "account_id": None, "previous_account_id": 2}


@pytest.mark.parametrize("who", ["student_a2", "teacher_a", "student_b", "viewer_a"])
def test_nobody_but_admins_sees_or_changes_assignments(client, tokens, who):
    client.put("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
               json={"account_id": 1, "tenant": "school_a"})
    for method, path, body in (
        ("GET", "/api/suno/accounts", None), ("GET", "/api/suno/assignments", None),
        ("PUT", "/api/suno/assignments/stu_a", {"account_id": 2}),
        ("PUT", f"/api/suno/assignments/{who}", {"account_id": 1}),
        ("DELETE", "/api/suno/assignments/stu_a", None),
    ):
        answer = client.request(method, path, headers=auth(tokens, who), json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "forbidden"
        assert "class1@example.com" not in answer.text
    # another person's assignment is not theirs to see or reveal
    theirs = client.get("/api/suno/me", headers=auth(tokens, who)).json()
    assert theirs["assigned"] is False and theirs["account"] is None
    assert client.post("/api/suno/me/reveal", headers=auth(tokens, who)).status_code == 404
    # and nothing changed
    items = client.get("/api/suno/assignments", headers=auth(tokens, "admin")).json()["items"]
    assert list(items) == ["stu_a"] and items["stu_a"]["id"] == 1


def test_assigning_an_unknown_account_is_a_clear_404(client, tokens):
    answer = client.put("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
                        json={"account_id": 9})
    assert answer.status_code == 404 and "no active Suno account 9" in answer.json()[
        "error"]["message"]
    bad = client.put("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
                     json={"account_id": "two"})
    assert bad.status_code == 422 and audit(client, tokens, "suno.") == []


@pytest.mark.parametrize("text, problem", [
    ('{"id": 1}', "expected a list of accounts"),
    ('[{"id": 1, "email": "a@b.c", "password": "", "memo": ""}]', "needs its password"),
    ('[{"id": 1, "email": "nobody", "password": "x"}]', "not an email address"),
    ('[{"id": 1, "email": "a@b.c", "password": "x"}, {"id": 1, "email": "d@e.f", '
     '"password": "y"}]', "duplicate account id 1"),
    ('[{"id": 1, "email": "a@b.c", "password": "x", "pin": 3}]', "unknown field(s) ['pin']"),
    ("[{", "not valid JSON"),
])
def test_bad_accounts_are_refused_in_words(text, problem, tmp_path):
    settings = Settings(data_dir=tmp_path, suno_accounts_json=text)
    with pytest.raises(SunoAccountsError) as raised:
        declared_accounts(settings)
    assert problem in str(raised.value)
    assert str(raised.value).startswith("CLASSROOM_SUNO_ACCOUNTS_JSON")


def test_accounts_file_in_toml(tmp_path):
    path = tmp_path / "suno.toml"
    path.write_text('[[suno]]\nid = 3\nemail = "c@example.com"\npassword = "pw"\nmemo = "x"\n'
                    '\n[[suno]]\nid = 4\nemail = "bad"\npassword = "pw"\n')
    with pytest.raises(SunoAccountsError) as raised:
        declared_accounts(Settings(data_dir=tmp_path, suno_accounts_file=path))
    assert str(raised.value) == (f"{path}:9: account 1: field 'email': 'bad' is not an "
                                 "email address")
    path.write_text('[[suno]]\nid = 3\nemail = "c@example.com"\npassword = "pw"\n')
    [account] = declared_accounts(Settings(data_dir=tmp_path, suno_accounts_file=path))
    assert (account.id, account.email, account.memo) == (3, "c@example.com", "")
    assert "pw" not in repr(account)


def test_a_withdrawn_account_is_no_longer_offered(client, tokens, gateway_settings):
    client.put("/api/suno/assignments/stu_a", headers=auth(tokens, "admin"),
               json={"account_id": 1})
    settings = client.settings.model_copy(update={"suno_accounts_json": json.dumps(SEED[2:])})
    with TestClient(create_asgi(settings)) as again:
        items = again.get("/api/suno/accounts", headers=auth(tokens, "admin")).json()["items"]
        assert [(a["id"], a["active"]) for a in items] == [(1, False), (2, True)]
        assert again.get("/api/suno/me", headers=auth(tokens)).json()["assigned"] is False


# -- music jobs ----------------------------------------------------------------------------


def test_mock_music_job_makes_a_wav_recorded_and_metered(client, tokens):
    job, seen = run_job(client, tokens, {"kind": "music", "model": "mock/music",
                                          "prompt": "a calm lo-fi beat",
                                          "params": {"duration": 6, "style": "lo-fi"}})
    assert job["status"] == "succeeded", job
    [artifact] = job["artifacts"]
    assert artifact["kind"] == "audio" and artifact["mime"] == "audio/wav"
    data = client.get(artifact["url"], headers=auth(tokens)).content
    with wave.open(io.BytesIO(data)) as clip:
        assert clip.getnframes() / clip.getframerate() == 6
        frames = clip.readframes(clip.getnframes())
    assert len(set(frames[i:i + 2] for i in range(0, 4000, 2))) > 50  # not silence
    row = client.get(f"/api/history/{job['run_id']}", headers=auth(tokens)).json()
    assert (row["kind"], row["status"], row["user"], row["cost_micro_usd"]) == (
        "music", "ok", "stu_a", 0)
    again, _ = run_job(client, tokens, {"kind": "music", "model": "mock/music",
                                         "prompt": "a calm lo-fi beat",
                                         "params": {"duration": 6, "style": "lo-fi"}})
    same = client.get(again["artifacts"][0]["url"], headers=auth(tokens)).content
    assert same == data  # deterministic: the same prompt makes the same tune


@pytest.mark.parametrize("params, field", [
    ({"duration": 60}, "params.duration"),
    ({"duration": "long"}, "params.duration"),
    ({"instrumental": "yes"}, "params.instrumental"),
    ({"lyrics_url": "x"}, "params"),
])
def test_music_params_are_checked_in_words(client, tokens, params, field):
    answer = client.post("/api/jobs", headers=auth(tokens), json={
        "kind": "music", "model": "mock/music", "prompt": "x", "params": params})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field


def test_music_needs_the_music_feature(client, tokens):
    # school_b has not switched on 'music'
    answer = client.post("/api/jobs", headers=auth(tokens, "student_b"), json={
        "kind": "music", "model": "mock/music", "prompt": "x"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "feature_disabled"
    assert "'music'" in answer.json()["error"]["message"]
