"""The audit log: who did what, when. One function writes it; every admin and
teacher action calls it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.history.models import audit_log, import_positions
from gateway.history.store import HistoryStore

log = logging.getLogger("gateway.audit")


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


HUB_AUDIT_FILE = "hub-audit.jsonl"  # written by hub/audit.py
HUB_AUDIT_SOURCE = "hub-audit"  # its row in import_positions
# Where the read position was kept before it moved into the database (migration 0005):
# read once, at the first import into a database that has none, so nothing is imported
# twice after an upgrade; never written again.
LEGACY_OFFSET_FILE = "hub-audit.offset"


def import_hub_audit(conn: Connection, data_dir: Path) -> int:
    """Move new lines of the hub's audit spool into the audit log; returns how many.

    The read position is a row of ``import_positions`` updated in the same transaction as
    the audit rows it covers: rolled back (and run again, as a write of a failed batch is)
    together with them, so each line is imported exactly once. It is claimed by a
    compare-and-set, so two imports that read the same position never both write its
    lines. A half-written last line waits for the next round.
    """
    spool = data_dir / HUB_AUDIT_FILE
    try:
        size = spool.stat().st_size
    except FileNotFoundError:
        return 0
    found = conn.execute(
        select(import_positions.c.position).where(import_positions.c.source == HUB_AUDIT_SOURCE)
    ).first()
    if found is None:
        conn.execute(insert(import_positions).values(
            source=HUB_AUDIT_SOURCE, position=None, updated_at=time.time()))
    stored = found[0] if found is not None else None
    offset = stored if stored is not None else _legacy_offset(data_dir)
    if offset > size:  # the spool was replaced: start again
        offset = 0
    with open(spool, "rb") as handle:
        handle.seek(offset)
        chunk = handle.read(size - offset)
    complete = chunk[: chunk.rfind(b"\n") + 1]
    if not complete and stored is not None:
        return 0
    claimed = conn.execute(
        update(import_positions)
        .where(import_positions.c.source == HUB_AUDIT_SOURCE,
               import_positions.c.position.is_not_distinct_from(stored))
        .values(position=offset + len(complete), updated_at=time.time())
    )
    if claimed.rowcount != 1:  # another import took these lines first
        return 0
    rows = []
    for raw in complete.splitlines():
        try:
            entry = json.loads(raw)
            rows.append({
                "at": float(entry["at"]), "actor": str(entry["actor"])[:128],
                "actor_role": str(entry.get("actor_role") or "admin")[:16],
                "tenant": entry.get("tenant"), "action": str(entry["action"])[:64],
                "target": entry.get("target"),
                "details": json.dumps(entry.get("details") or {}, sort_keys=True),
            })
        except (ValueError, KeyError, TypeError):
            log.warning("skipped a malformed line of the hub's audit spool")
    if rows:
        conn.execute(insert(audit_log), rows)
    return len(rows)


def _legacy_offset(data_dir: Path) -> int:
    try:
        return int((data_dir / LEGACY_OFFSET_FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


async def follow_hub_audit(store: HistoryStore, data_dir: Path, interval: float = 2.0) -> None:
    """Import the hub's audit spool every ``interval`` seconds, for the gateway's lifetime."""
    while True:
        await asyncio.sleep(interval)
        try:
            await store.write(lambda conn: import_hub_audit(conn, data_dir))
        except Exception:  # keep following; the next round tries again
            log.exception("importing the hub's audit spool failed")
