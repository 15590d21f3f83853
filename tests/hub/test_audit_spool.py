"""Account actions on the hub side reach the gateway's audit log (through the spool)."""

from __future__ import annotations

import json
import stat

from fastapi.testclient import TestClient

from gateway.edge.app import create_asgi
from gateway.history.audit import import_hub_audit
from hub.audit import AUDIT_FILE, record
from tests.hub.test_cli import classroom


def test_cli_account_changes_are_spooled_without_secrets(tmp_path):
    data = tmp_path / "data"
    assert classroom(data, "accounts", "add", "--tenant", "school_a", "--role", "student",
                     "--password", "correct-horse-42", "amy").returncode == 0
    assert classroom(data, "accounts", "disable", "amy").returncode == 0
    assert classroom(data, "accounts", "reset-password", "--password", "battery-staple-9",
                     "amy").returncode == 0
    assert classroom(data, "accounts", "disable", "nobody").returncode != 0  # failed: not audited
    spool = data / AUDIT_FILE
    entries = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("account.add", "amy"), ("account.disable", "amy"), ("account.password_reset", "amy"),
    ]
    assert entries[0]["tenant"] == "school_a" and entries[0]["details"]["role"] == "student"
    assert entries[0]["actor"].endswith("(command line)")
    text = spool.read_text()
    assert "correct-horse-42" not in text and "battery-staple-9" not in text
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600


def test_gateway_imports_the_spool_once_and_shows_it_in_the_audit_log(gateway_settings, tokens):
    data = gateway_settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    record(data, actor="classroom hub", actor_role="admin", action="account.locked",
           target="stu_a", tenant="school_a", details={"failed_logins": 5})
    with open(data / AUDIT_FILE, "a") as spool:
        spool.write('{"half a line')  # a line still being written waits for the next round
    with TestClient(create_asgi(gateway_settings)) as client:
        services = client.app.app.state.services  # type: ignore[attr-defined]
        with services.history.engine.begin() as conn:
            assert import_hub_audit(conn, data) == 0  # the lifespan already took it
        admin = client.get("/api/audit", params={"action": "account."},
                           headers={"Authorization": f"Bearer {tokens['admin']}"}).json()
        teacher_b = client.get("/api/audit", params={"action": "account."},
                               headers={"Authorization": f"Bearer {tokens['teacher_b']}"}).json()
    assert [(i["action"], i["target"], i["tenant"]) for i in admin["items"]] == [
        ("account.locked", "stu_a", "school_a")
    ]
    assert teacher_b["items"] == []  # another school's account actions stay with that school
