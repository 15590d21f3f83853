"""Keys at rest and the admin API: encrypted, synced from the file, never shown."""

from __future__ import annotations

import base64
import secrets
import sqlite3

import pytest

from gateway.history.store import make_engine, upgrade
from gateway.keypool import parse_keys
from gateway.keypool.store import KeyStore, MasterKeyError, SecretBox, load_master_key
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)

SECRET_A = "sk-live-AAAAAAAAAAAAAAAAAAAAAAAA1111"
SECRET_B = "sk-live-BBBBBBBBBBBBBBBBBBBBBBBB2222"
KEYS_TOML = f"""
[[openai]]
name = "main"
api_key = "{SECRET_A}"
concurrency_limit = 2
rpm_limit = 60

[[openai]]
name = "spare"
api_key = "{SECRET_B}"
tenant_scope = ["school_a"]

[[mock]]
name = "mock-limited"
concurrency_limit = 3
"""


def master() -> bytes:
    return secrets.token_bytes(32)


def store_at(tmp_path, key=None):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    upgrade(engine)
    return KeyStore(engine, SecretBox(key or master())), engine


def test_sync_adds_updates_and_deactivates(tmp_path):
    store, _ = store_at(tmp_path)
    first = parse_keys(
        {"openai": [{"name": "a", "api_key": SECRET_A}, {"name": "b", "api_key": SECRET_B}]}, "t"
    )
    report = store.sync(first)
    assert sorted(report.added) == ["openai/a", "openai/b"]
    changed = parse_keys({"openai": [{"name": "a", "api_key": SECRET_A, "rpm_limit": 10}]}, "t")
    report = store.sync(changed)
    assert (
        report.updated == ["openai/a"] and report.deactivated == ["openai/b"] and not report.added
    )
    again = store.sync(changed)
    assert not (again.added or again.updated or again.deactivated)
    listing = {k["name"]: k for k in store.listing()}
    assert listing["a"]["rpm_limit"] == 10 and listing["a"]["is_active"]
    assert listing["b"]["is_active"] is False  # kept, never deleted
    loaded = store.load()
    assert [(k.name, k.secret) for k, _, _ in loaded] == [("a", SECRET_A)]


def test_secrets_are_unreadable_without_the_master_key(tmp_path):
    key = master()
    store, _ = store_at(tmp_path, key)
    store.sync(parse_keys({"openai": [{"name": "a", "api_key": SECRET_A}]}, "t"))
    raw = (tmp_path / "g.sqlite").read_bytes()
    assert SECRET_A.encode() not in raw and b"AAAAAAAA" not in raw
    with sqlite3.connect(tmp_path / "g.sqlite") as conn:
        sealed, last4 = conn.execute("select secret_enc, last4 from provider_keys").fetchone()
    assert last4 == "1111" and SECRET_A not in sealed
    wrong = KeyStore(store.engine, SecretBox(master()))
    with pytest.raises(MasterKeyError):
        wrong.load()
    assert KeyStore(store.engine, SecretBox(key)).load()[0][0].secret == SECRET_A


def test_master_key_generated_only_in_embedded_mode(tmp_path):
    generated = load_master_key(None, tmp_path, embedded=True)
    path = tmp_path / "master.key"
    assert len(generated) == 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_master_key(None, tmp_path, embedded=True) == generated  # reused
    with pytest.raises(MasterKeyError, match="CLASSROOM_MASTER_KEY is not set"):
        load_master_key(None, tmp_path / "elsewhere", embedded=False)
    with pytest.raises(MasterKeyError, match="URL-safe base64"):
        load_master_key("too-short", tmp_path, embedded=False)
    good = base64.urlsafe_b64encode(b"k" * 32).decode()
    assert load_master_key(good, tmp_path, embedded=False) == b"k" * 32


@pytest.fixture
def pool_client(gateway_with_keys):
    return gateway_with_keys(KEYS_TOML)


def auth(tokens, who):
    return {"Authorization": f"Bearer {tokens[who]}"}


def test_pool_state_is_for_admins_and_shows_no_secret(pool_client, tokens):
    assert pool_client.get("/api/pool", headers=auth(tokens, "teacher_a")).status_code == 403
    assert pool_client.get("/api/pool", headers=auth(tokens, "student_a")).status_code == 403
    response = pool_client.get("/api/pool", headers=auth(tokens, "admin"))
    assert response.status_code == 200
    keys = {k["name"]: k for k in response.json()["keys"]}
    assert set(keys) == {"main", "spare", "mock-limited"}
    assert keys["main"]["concurrency_limit"] == 2 and keys["main"]["last4"] == "1111"
    assert keys["main"]["healthy"] is True and keys["main"]["active_leases"] == 0
    for secret in (SECRET_A, SECRET_B, "AAAAAAAA"):
        assert secret not in response.text
    listing = pool_client.get("/api/keys", headers=auth(tokens, "admin"))
    assert SECRET_A not in listing.text
    assert {k["name"]: k["last4"] for k in listing.json()["keys"]} == {
        "main": "1111",
        "spare": "2222",
        "mock-limited": None,
    }


def test_admin_adds_disables_and_enables_keys_with_audit(pool_client, tokens):
    new = {
        "provider": "anthropic",
        "name": "claude-1",
        "api_key": "sk-ant-test-ZZZZZZZZZZZZ9999",
        "concurrency_limit": 4,
    }
    added = pool_client.post("/api/keys", json=new, headers=auth(tokens, "admin"))
    assert added.status_code == 201 and added.json() == {
        "provider": "anthropic",
        "name": "claude-1",
        "last4": "9999",
        "created": True,
    }
    assert "ZZZZ" not in added.text
    refused = pool_client.post("/api/keys", json=new, headers=auth(tokens, "teacher_a"))
    assert refused.status_code == 403
    bad = pool_client.post(
        "/api/keys", json={"provider": "anthropic", "name": "x"}, headers=auth(tokens, "admin")
    )
    assert bad.status_code == 400 and "api_key" in bad.json()["error"]["message"]
    off = pool_client.post("/api/keys/openai/main/disable", headers=auth(tokens, "admin"))
    assert off.json()["is_active"] is False
    state = pool_client.get("/api/pool", headers=auth(tokens, "admin")).json()
    assert "main" not in {k["name"] for k in state["keys"] if k["is_active"]}
    assert (
        pool_client.post("/api/keys/openai/nope/enable", headers=auth(tokens, "admin")).status_code
        == 404
    )
    on = pool_client.post("/api/keys/openai/main/enable", headers=auth(tokens, "admin"))
    assert on.json()["is_active"] is True
    from sqlalchemy import text

    engine = pool_client.app.app.state.services.history.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # the database itself (SQLite file, or PostgreSQL)
        actions = [r[0] for r in conn.execute(text("select action from audit_log order by id"))]
        details = " ".join(r[0] for r in conn.execute(text("select details from audit_log")))
    assert actions == ["key.add", "key.disable", "key.enable"]
    assert "ZZZZ" not in details


def test_teacher_pauses_own_class_and_student_sees_it(pool_client, tokens):
    other = pool_client.post(
        "/api/pauses", json={"tenant": "school_b"}, headers=auth(tokens, "teacher_a")
    )
    assert other.status_code == 403
    assert (
        pool_client.post("/api/pauses", json={}, headers=auth(tokens, "student_a")).status_code
        == 403
    )
    made = pool_client.post(
        "/api/pauses", json={"reason": "quiz time"}, headers=auth(tokens, "teacher_a")
    )
    assert made.status_code == 201
    me = pool_client.get("/api/me", headers=auth(tokens, "student_a")).json()
    assert me["quota"]["paused"] == {"by": "teach_a", "reason": "quiz time", "whole_class": True}
    assert (
        pool_client.get("/api/me", headers=auth(tokens, "student_b")).json()["quota"]["paused"]
        is None
    )
    assert pool_client.get("/api/pauses", headers=auth(tokens, "teacher_b")).json()["pauses"] == []
    pause_id = made.json()["id"]
    assert (
        pool_client.delete(f"/api/pauses/{pause_id}", headers=auth(tokens, "teacher_b")).status_code
        == 404
    )
    assert (
        pool_client.delete(f"/api/pauses/{pause_id}", headers=auth(tokens, "teacher_a")).status_code
        == 200
    )
    assert (
        pool_client.get("/api/me", headers=auth(tokens, "student_a")).json()["quota"]["paused"]
        is None
    )


def test_me_shows_remaining_quota(pool_client, tokens):
    quota = pool_client.get("/api/me", headers=auth(tokens, "student_a")).json()["quota"]
    assert quota["requests_today"]["limit"] == 500 and quota["requests_today"]["remaining"] == 500
    assert quota["budget_month"]["limit_usd"] == 5.0
    put = pool_client.put(
        "/api/overrides/stu_a",
        json={"tenant": "school_a", "requests_per_day": 7},
        headers=auth(tokens, "admin"),
    )
    assert put.status_code == 200
    quota = pool_client.get("/api/me", headers=auth(tokens, "student_a")).json()["quota"]
    assert quota["requests_today"]["limit"] == 7 and quota["overridden"] == ["requests_per_day"]
    assert (
        pool_client.put(
            "/api/overrides/stu_a", json={"tenant": "school_a"}, headers=auth(tokens, "teacher_a")
        ).status_code
        == 403
    )
