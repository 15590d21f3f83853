"""Read-only views for teachers and admins: one student's work, and the audit log.

Plain functions on a SQLAlchemy ``Connection`` (run them through
``HistoryStore.read``). Scoping is decided by the caller and passed in as a
set of tenants (``None``: every tenant); nothing here looks at identities.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection

from gateway.history.conversations import conversation_to_public, message_to_public
from gateway.history.models import artifacts, audit_log, conversations, messages, runs
from gateway.history.store import run_to_public
from gateway.history.usage import UsageFilter, aggregate, select_runs

MAX_CONVERSATIONS = 50
MAX_MESSAGES = 500


def _iso(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value else None


def student_tenants(connection: Connection, user: str) -> set[str]:
    """Every school a user has history in (runs or conversations)."""
    found = {t for (t,) in connection.execute(select(runs.c.tenant).where(runs.c.user == user)
                                               .distinct())}
    found |= {
        t for (t,) in connection.execute(
            select(conversations.c.tenant).where(conversations.c.user == user).distinct()
        )
    }
    return found


def _has_table(connection: Connection, name: str) -> bool:
    return inspect(connection).has_table(name)


def student_work(
    connection: Connection,
    user: str,
    tenants: Collection[str] | None,
    *,
    runs_limit: int = 50,
    now: float,
) -> dict[str, Any] | None:
    """One user's work within ``tenants``; None when there is none to show."""
    visible = student_tenants(connection, user)
    if tenants is not None:
        visible &= set(tenants)
    if not visible:
        return None
    rows: list[dict[str, Any]] = []
    for tenant in sorted(visible):
        rows += select_runs(connection, UsageFilter(user=user, tenant=tenant))
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    recent_ids = sorted((r["id"] for r in rows), reverse=True)[:runs_limit]
    recent = connection.execute(
        select(runs).where(runs.c.id.in_(recent_ids)).order_by(runs.c.id.desc())
    ).mappings().all()
    latest_role = max(rows, key=lambda r: r["id"])["role"] if rows else None

    convs = connection.execute(
        select(conversations)
        .where(conversations.c.user == user, conversations.c.tenant.in_(sorted(visible)))
        .order_by(conversations.c.updated_at.desc())
        .limit(MAX_CONVERSATIONS)
    ).mappings().all()
    conversation_list = []
    for conv in convs:
        msgs = connection.execute(
            select(messages)
            .where(messages.c.conversation_id == conv["id"])
            .order_by(messages.c.created_at, messages.c.id)
            .limit(MAX_MESSAGES)
        ).mappings().all()
        conversation_list.append({
            **conversation_to_public(dict(conv), len(msgs)),
            "messages": [message_to_public(dict(m)) for m in msgs],
        })

    artifact_list: list[dict[str, Any]] = []
    if _has_table(connection, "artifacts"):
        found = connection.execute(
            select(
                artifacts.c.id, artifacts.c.kind, artifacts.c.mime, artifacts.c.size,
                artifacts.c.model, artifacts.c.prompt, artifacts.c.run_id, artifacts.c.created_at,
            )
            .where(artifacts.c.user == user, artifacts.c.tenant.in_(sorted(visible)))
            .order_by(artifacts.c.created_at.desc())
            .limit(100)
        ).mappings().all()
        artifact_list = [
            {**dict(a), "created_at": _iso(a["created_at"])} for a in found
        ]

    return {
        "user": user,
        "tenants": sorted(visible),
        "role": latest_role,
        "usage": {
            "all_time": aggregate(rows)["totals"],
            "today": aggregate(r for r in rows if r["queued_at"] >= today.timestamp())["totals"],
            "by_model": aggregate(rows, "model")["rows"],
        },
        "runs": [run_to_public(dict(r)) for r in recent],
        "conversations": conversation_list,
        "artifacts": artifact_list,
    }


def audit_entries(
    connection: Connection,
    *,
    tenants: Collection[str] | None,
    actor: str | None = None,
    action: str | None = None,
    since: float | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Audit entries, newest first, within ``tenants`` (None: all)."""
    where: list[Any] = []
    if tenants is not None:
        where.append(audit_log.c.tenant.in_(sorted(tenants)))
    if actor is not None:
        where.append(audit_log.c.actor == actor)
    if action is not None:
        where.append(audit_log.c.action.startswith(action))
    if since is not None:
        where.append(audit_log.c.at >= since)
    query = select(audit_log).where(*where).order_by(audit_log.c.id.desc())
    rows = connection.execute(query.limit(limit).offset(offset)).mappings().all()
    count = select(func.count()).select_from(audit_log).where(*where)
    total = connection.execute(count).scalar_one()
    items = []
    for row in rows:
        try:
            details = json.loads(row["details"] or "{}")
        except ValueError:
            details = {"raw": row["details"]}
        items.append({**dict(row), "at": _iso(row["at"]), "details": details})
    return items, int(total)
