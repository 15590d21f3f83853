"""Housekeeping: forget prompt and response text after N days, count and purge tables.

*Retention* keeps every number (tokens, cost, latency, who, which model) and
removes only what people wrote and what models answered: ``runs.request_text``
and ``runs.response_text``, conversation message contents, job and artifact
prompts. The setting lives in ``<data dir>/retention.json`` (the admin API
writes it); :func:`run_retention` applies it once an hour when the gateway
starts it.

A *manual purge* deletes whole rows older than N days from one of the
:data:`PURGEABLE` tables. Plain functions on a SQLAlchemy ``Connection``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, and_, delete, func, inspect, select, table, update
from sqlalchemy.engine import Connection

from gateway.history.models import artifacts, audit_log, conversations, jobs, messages, pauses, runs
from gateway.history.store import HistoryStore

log = logging.getLogger("gateway.retention")

RETENTION_FILE = "retention.json"  # inside CLASSROOM_DATA_DIR
REMOVED = "(removed by the retention policy)"
DAY = 86400

# table -> (table object, time column, rows that must never be purged)
PURGEABLE: dict[str, tuple[Table, Column[Any], Any]] = {
    "runs": (runs, runs.c.queued_at, runs.c.status == "running"),
    "audit_log": (audit_log, audit_log.c.at, None),
    "conversations": (conversations, conversations.c.updated_at, None),
    "messages": (messages, messages.c.created_at, None),
    "pauses": (pauses, pauses.c.created_at, None),
    "jobs": (jobs, jobs.c.created_at, jobs.c.status.in_(("queued", "running"))),
}


@dataclass
class RetentionSettings:
    """``text_days``: keep prompt/response text this many days (None: forever)."""

    text_days: int | None = None
    updated_by: str | None = None
    updated_at: float | None = None
    last_purge_at: float | None = None
    last_purge: dict[str, int] | None = None

    @classmethod
    def load(cls, data_dir: Path) -> RetentionSettings:
        try:
            raw = json.loads((Path(data_dir) / RETENTION_FILE).read_text(encoding="utf-8"))
            return cls(**{k: raw.get(k) for k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, data_dir: Path) -> None:
        path = Path(data_dir) / RETENTION_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(asdict(self), file, indent=2)
        os.replace(tmp, path)

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _has(connection: Connection, table: Table) -> bool:
    return inspect(connection).has_table(table.name)


def purge_text(connection: Connection, cutoff: float) -> dict[str, int]:
    """Remove prompt and response text written before ``cutoff``; keep every number."""
    done: dict[str, int] = {}
    result = connection.execute(
        update(runs)
        .where(
            runs.c.queued_at < cutoff,
            runs.c.status != "running",
            (runs.c.request_text.is_not(None)) | (runs.c.response_text.is_not(None)),
        )
        .values(request_text=None, response_text=None)
    )
    done["runs"] = int(result.rowcount or 0)
    result = connection.execute(
        update(messages)
        .where(messages.c.created_at < cutoff, messages.c.content != REMOVED,
               messages.c.content.is_not(None))
        .values(content=REMOVED)
    )
    done["messages"] = int(result.rowcount or 0)
    for media in (jobs, artifacts):
        if not _has(connection, media):
            continue
        result = connection.execute(
            update(media)
            .where(media.c.created_at < cutoff, media.c.prompt.is_not(None))
            .values(prompt=None)
        )
        done[media.name] = int(result.rowcount or 0)
    return done


def text_counts(connection: Connection, cutoff: float) -> dict[str, int]:
    """How many rows older than ``cutoff`` still hold text (what a purge would clear)."""
    runs_with_text = connection.execute(
        select(func.count()).select_from(runs).where(
            runs.c.queued_at < cutoff,
            (runs.c.request_text.is_not(None)) | (runs.c.response_text.is_not(None)),
        )
    ).scalar_one()
    messages_with_text = connection.execute(
        select(func.count()).select_from(messages).where(
            messages.c.created_at < cutoff, messages.c.content != REMOVED
        )
    ).scalar_one()
    return {"runs": int(runs_with_text), "messages": int(messages_with_text)}


def table_counts(connection: Connection) -> dict[str, int]:
    """Rows in every table of the history database (Alembic's own table included)."""
    return {
        name: int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in sorted(inspect(connection).get_table_names())
    }


def purge_table(connection: Connection, name: str, cutoff: float) -> int:
    """Delete rows of a :data:`PURGEABLE` table older than ``cutoff``; return how many."""
    table, column, keep = PURGEABLE[name]
    condition = column < cutoff
    if keep is not None:
        condition = and_(condition, ~keep)
    if name == "conversations":
        # Messages go with their conversation (also where foreign keys are not enforced).
        old = select(conversations.c.id).where(condition)
        connection.execute(delete(messages).where(messages.c.conversation_id.in_(old)))
    result = connection.execute(delete(table).where(condition))
    return int(result.rowcount or 0)


async def apply_retention(store: HistoryStore, data_dir: Path, now: float | None = None
                          ) -> dict[str, int] | None:
    """Purge text past the configured age now; None when no retention is set."""
    settings = RetentionSettings.load(data_dir)
    if settings.text_days is None:
        return None
    moment = time.time() if now is None else now
    cutoff = moment - settings.text_days * DAY
    done = await store.write(lambda c: purge_text(c, cutoff))
    settings.last_purge_at, settings.last_purge = moment, done
    settings.save(data_dir)
    return done


async def run_retention(store: HistoryStore, data_dir: Path, interval: float = 3600) -> None:
    """Apply the retention setting every ``interval`` seconds (start it in the app's lifespan)."""
    while True:
        try:
            done = await apply_retention(store, data_dir)
            if done and any(done.values()):
                log.info("retention: removed text from %s", done)
        except Exception:  # keep housekeeping alive; the next round tries again
            log.exception("retention purge failed")
        await asyncio.sleep(interval)
