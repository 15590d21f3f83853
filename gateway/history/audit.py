"""The audit log: who did what, when. One function writes it; every admin and
teacher action calls it."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.history.models import audit_log
from gateway.history.store import HistoryStore


async def record_audit(
    store: HistoryStore, actor: Identity, action: str, *, target: str | None = None,
    tenant: str | None = None, details: dict[str, Any] | None = None,
) -> None:
    values = {
        "at": time.time(), "actor": actor.name, "actor_role": actor.role,
        "tenant": tenant if tenant is not None else actor.tenant, "action": action,
        "target": target, "details": json.dumps(details or {}, sort_keys=True),
    }

    def write(connection: Connection) -> None:
        connection.execute(insert(audit_log).values(**values))

    await store.write(write)
