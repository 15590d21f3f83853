"""Audit log, retention, table sizes, purges and published dashboards (/api/audit,
/api/admin/*, /api/dashboards/published)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from gateway.history import demo
from gateway.history.models import audit_log, messages, runs
from tests.conftest import both_databases  # noqa: F401  (every test on SQLite and PostgreSQL)

NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Class pulse\n", "numbers"]}],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture
def client(gateway_client: TestClient) -> Iterator[TestClient]:
    with engine(gateway_client).begin() as connection:
        demo.seed(connection)
    yield gateway_client


def engine(client: TestClient) -> Any:
    return client.app.app.state.services.history.engine  # type: ignore[attr-defined]


def call(client: TestClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def scalar(client: TestClient, query: Any) -> Any:
    with engine(client).connect() as connection:
        return connection.execute(query).scalar_one()


# -- audit --------------------------------------------------------------------------------------


def test_audit_is_scoped(client: TestClient, tokens: dict[str, str]) -> None:
    everything = call(client, tokens["admin"], "GET", "/api/audit").json()
    assert {e["tenant"] for e in everything["items"]} == {"school_a", "school_b", "default"}
    teacher = call(client, tokens["teacher_a"], "GET", "/api/audit").json()
    assert {e["tenant"] for e in teacher["items"]} == {"school_a"}
    assert teacher["items"][0]["details"]["reason"] == "note-teach_a-quiz time"
    assert call(client, tokens["teacher_a"], "GET", "/api/audit",
                params={"tenant": "school_b"}).status_code == 403
    student = call(client, tokens["student_a"], "GET", "/api/audit").json()
    assert student["items"] == [] and student["total"] == 0
    assert call(client, tokens["student_a"], "GET", "/api/audit",
                params={"actor": "teach_a"}).status_code == 403
    keys = call(client, tokens["admin"], "GET", "/api/audit", params={"action": "key."}).json()
    assert [e["action"] for e in keys["items"]] == ["key.add"]


# -- retention ----------------------------------------------------------------------------------


def test_retention_purges_text_and_keeps_the_numbers(
    client: TestClient, tokens: dict[str, str]
) -> None:
    old = time.time() - 10 * 86400
    with engine(client).begin() as connection:
        connection.execute(update(messages).values(created_at=old))
    before_cost = scalar(client, select(func.sum(runs.c.cost_micro_usd)))
    before_rows = scalar(client, select(func.count()).select_from(runs))
    old_with_text = scalar(client, select(func.count()).select_from(runs).where(
        runs.c.queued_at < time.time() - 7 * 86400, runs.c.request_text.is_not(None)))
    assert old_with_text > 0

    assert call(client, tokens["admin"], "GET", "/api/admin/retention").json()["text_days"] is None
    no_setting = call(client, tokens["admin"], "POST", "/api/admin/retention/purge", json={})
    assert no_setting.status_code == 400
    saved = call(client, tokens["admin"], "PUT", "/api/admin/retention", json={"text_days": 7})
    assert saved.status_code == 200 and saved.json()["updated_by"] == "root_admin"
    view = call(client, tokens["admin"], "GET", "/api/admin/retention").json()
    assert view["text_days"] == 7 and view["pending"]["runs"] == old_with_text

    purged = call(client, tokens["admin"], "POST", "/api/admin/retention/purge", json={}).json()

    assert purged["cleared"]["runs"] == old_with_text
    assert purged["cleared"]["messages"] == 16
    assert scalar(client, select(func.count()).select_from(runs).where(
        runs.c.queued_at < time.time() - 7 * 86400, runs.c.request_text.is_not(None))) == 0
    assert scalar(client, select(func.sum(runs.c.cost_micro_usd))) == before_cost
    assert scalar(client, select(func.count()).select_from(runs)) == before_rows
    assert scalar(client, select(func.count()).select_from(runs).where(
        runs.c.response_text.like("note-%"))) > 0  # recent text stays
    actions = [e["action"] for e in call(client, tokens["admin"], "GET", "/api/audit",
                                         params={"action": "retention."}).json()["items"]]
    assert actions == ["retention.purge_text", "retention.set"]


def test_housekeeping_is_admin_only(client: TestClient, tokens: dict[str, str]) -> None:
    for who in ("teacher_a", "student_a"):
        token = tokens[who]
        assert call(client, token, "GET", "/api/admin/retention").status_code == 403
        assert call(client, token, "PUT", "/api/admin/retention",
                    json={"text_days": 1}).status_code == 403
        assert call(client, token, "GET", "/api/admin/tables").status_code == 403
        assert call(client, token, "POST", "/api/admin/purge/runs",
                    json={"older_than_days": 0, "confirm": "runs"}).status_code == 403


# -- tables and purges -----------------------------------------------------------------------


def test_table_counts_and_purge(client: TestClient, tokens: dict[str, str]) -> None:
    listing = call(client, tokens["admin"], "GET", "/api/admin/tables").json()["tables"]
    counts = {t["name"]: t for t in listing}
    assert counts["runs"]["rows"] == scalar(client, select(func.count()).select_from(runs))
    assert counts["runs"]["purgeable"] and not counts["provider_keys"]["purgeable"]
    assert "alembic_version" in counts

    unconfirmed = call(client, tokens["admin"], "POST", "/api/admin/purge/runs",
                       json={"older_than_days": 7, "confirm": "audit_log"})
    assert unconfirmed.status_code == 400
    refused = call(client, tokens["admin"], "POST", "/api/admin/purge/provider_keys",
                   json={"older_than_days": 0, "confirm": "provider_keys"})
    assert refused.status_code == 400

    old = scalar(client, select(func.count()).select_from(runs).where(
        runs.c.queued_at < time.time() - 7 * 86400))
    done = call(client, tokens["admin"], "POST", "/api/admin/purge/runs",
                json={"older_than_days": 7, "confirm": "runs"}).json()
    assert done["deleted"] == old > 0
    everything = call(client, tokens["admin"], "POST", "/api/admin/purge/runs",
                      json={"older_than_days": 0, "confirm": "runs"}).json()
    # calls running right now are never purged
    assert scalar(client, select(func.count()).select_from(runs)) == 3
    assert everything["deleted"] > 0
    conversations = call(client, tokens["admin"], "POST", "/api/admin/purge/conversations",
                         json={"older_than_days": 0, "confirm": "conversations"}).json()
    assert conversations["deleted"] == 4
    assert scalar(client, select(func.count()).select_from(messages)) == 0
    purges = scalar(client, select(func.count()).select_from(audit_log).where(
        audit_log.c.action == "table.purge"))
    assert purges == 3


# -- published dashboards ------------------------------------------------------------------------


def test_teacher_publishes_to_own_school_and_it_is_audited(
    client: TestClient, tokens: dict[str, str], gateway_settings: Any
) -> None:
    published = call(client, tokens["teacher_a"], "POST", "/api/dashboards/published",
                     json={"name": "pulse", "notebook": NOTEBOOK})
    assert published.status_code == 201, published.text
    assert published.json() == {
        "tenant": "school_a", "name": "pulse.ipynb", "title": "Class pulse",
        "url": "/hub/user-redirect/voila/render/published/pulse.ipynb",
        "class": None,  # published to the whole school, not to one class
    }
    path = gateway_settings.data_dir / "published" / "school_a" / "pulse.ipynb"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    # As root the school's folder is root's alone until the hub gives it to the school's
    # group (2750, see docs/isolation.md); without root it is read-only for everyone.
    expected = 0o700 if os.geteuid() == 0 else 0o555
    assert stat.S_IMODE(path.parent.stat().st_mode) == expected

    listing = call(client, tokens["student_a"], "GET", "/api/dashboards/published").json()
    assert [d["name"] for d in listing["items"]] == ["pulse.ipynb"]
    assert call(client, tokens["student_b"], "GET", "/api/dashboards/published").json()[
        "items"] == []
    assert call(client, tokens["student_b"], "GET", "/api/dashboards/published",
                params={"tenant": "school_a"}).status_code == 403

    entry = call(client, tokens["teacher_a"], "GET", "/api/audit",
                 params={"action": "dashboard."}).json()["items"][0]
    assert (entry["actor"], entry["action"], entry["target"], entry["tenant"]) == (
        "teach_a", "dashboard.publish", "pulse.ipynb", "school_a")

    # republishing replaces; withdrawing removes and is audited too
    again = call(client, tokens["teacher_a"], "POST", "/api/dashboards/published",
                 json={"name": "pulse.ipynb", "notebook": NOTEBOOK})
    assert again.status_code == 201
    gone = call(client, tokens["teacher_a"], "DELETE", "/api/dashboards/published/pulse.ipynb")
    assert gone.status_code == 204 and not path.exists()
    assert call(client, tokens["teacher_a"], "DELETE",
                "/api/dashboards/published/pulse.ipynb").status_code == 404


def test_publishing_is_refused_to_students_and_other_schools(
    client: TestClient, tokens: dict[str, str]
) -> None:
    body = {"name": "x.ipynb", "notebook": NOTEBOOK}
    assert call(client, tokens["student_a"], "POST", "/api/dashboards/published",
                json=body).status_code == 403
    assert call(client, tokens["teacher_b"], "POST", "/api/dashboards/published",
                json={**body, "tenant": "school_a"}).status_code == 403
    assert call(client, tokens["admin"], "POST", "/api/dashboards/published",
                json={**body, "tenant": "school_b"}).status_code == 201
    for bad in ({"name": "../../etc/passwd", "notebook": NOTEBOOK},
                {"name": "ok.ipynb", "notebook": {"cells": "no"}},
                {"name": "ok.ipynb", "notebook": {**NOTEBOOK, "nbformat": 3}}):
        response = call(client, tokens["teacher_a"], "POST", "/api/dashboards/published",
                        json=bad)
        assert response.status_code in (400, 422), bad
