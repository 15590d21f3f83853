"""Load tests in the history database: runs, rounds, samples and lesson recordings.

Functions on a SQLAlchemy ``Connection``, to be called through
``HistoryStore.read`` / ``HistoryStore.write`` (which own the threads).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from gateway.history.models import (
    loadtest_lessons,
    loadtest_rounds,
    loadtest_runs,
    loadtest_samples,
    runs,
)

LIVE = ("running",)
SAMPLE_FIELDS = tuple(c.name for c in loadtest_samples.columns if c.name not in ("id",))


def create_run(conn: Connection, values: dict[str, Any],
               rounds: Sequence[dict[str, Any]]) -> int:
    key = conn.execute(insert(loadtest_runs).values(**values)).inserted_primary_key
    assert key is not None
    run_id = int(key[0])
    if rounds:
        conn.execute(insert(loadtest_rounds), [{**r, "loadtest_id": run_id} for r in rounds])
    return run_id


def update_run(conn: Connection, run_id: int, **values: Any) -> None:
    conn.execute(update(loadtest_runs).where(loadtest_runs.c.id == run_id).values(**values))


def update_round(conn: Connection, run_id: int, idx: int, **values: Any) -> None:
    conn.execute(
        update(loadtest_rounds)
        .where(loadtest_rounds.c.loadtest_id == run_id, loadtest_rounds.c.idx == idx)
        .values(**values)
    )


def add_samples(conn: Connection, run_id: int, samples: Sequence[dict[str, Any]]) -> None:
    if samples:
        conn.execute(insert(loadtest_samples),
                     [{**{k: s.get(k) for k in SAMPLE_FIELDS}, "loadtest_id": run_id}
                      for s in samples])


def mark_interrupted(conn: Connection, live: Sequence[int]) -> int:
    """Runs recorded as running that no task of this process runs: a gateway stopped them."""
    query = update(loadtest_runs).where(loadtest_runs.c.status.in_(LIVE))
    if live:
        query = query.where(loadtest_runs.c.id.not_in(list(live)))
    result = conn.execute(query.values(
        status="interrupted", finished_at=time.time(),
        error_message="The gateway stopped while this load test was running.",
    ))
    return int(result.rowcount or 0)


def run_row(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(loadtest_runs).where(loadtest_runs.c.id == run_id)).mappings().first()
    return _public_run(dict(row)) if row else None


def list_runs(conn: Connection, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    rows = conn.execute(
        select(loadtest_runs).order_by(loadtest_runs.c.id.desc()).limit(limit).offset(offset)
    ).mappings().all()
    total = conn.execute(select(func.count()).select_from(loadtest_runs)).scalar_one()
    return [_public_run(dict(r), with_plan=False) for r in rows], int(total)


def round_rows(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(loadtest_rounds).where(loadtest_rounds.c.loadtest_id == run_id)
        .order_by(loadtest_rounds.c.idx)
    ).mappings().all()
    return [{k: v for k, v in dict(r).items() if k not in ("id", "loadtest_id")} for r in rows]


def sample_rows(conn: Connection, run_id: int, *, round_idx: int | None = None,
                limit: int | None = None, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    conditions = [loadtest_samples.c.loadtest_id == run_id]
    if round_idx is not None:
        conditions.append(loadtest_samples.c.round_idx == round_idx)
    query = select(loadtest_samples).where(*conditions).order_by(loadtest_samples.c.id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    rows = conn.execute(query).mappings().all()
    total = conn.execute(
        select(func.count()).select_from(loadtest_samples).where(*conditions)
    ).scalar_one()
    return [{k: v for k, v in dict(r).items() if k != "loadtest_id"} for r in rows], int(total)


def history_rows(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The history rows of the given calls, by id: what the pipeline recorded."""
    if not ids:
        return {}
    cols = (runs.c.id, runs.c.status, runs.c.error_code, runs.c.provider, runs.c.queued_at,
            runs.c.started_at, runs.c.first_token_at, runs.c.finished_at, runs.c.prompt_tokens,
            runs.c.completion_tokens, runs.c.cost_micro_usd)
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        for row in conn.execute(select(*cols).where(runs.c.id.in_(chunk))).mappings():
            out[int(row["id"])] = dict(row)
    return out


def _public_run(row: dict[str, Any], with_plan: bool = True) -> dict[str, Any]:
    out = dict(row)
    out["plan"] = json.loads(row["plan"]) if with_plan and row.get("plan") else None
    if not with_plan:
        out.pop("plan")
    out["settings"] = json.loads(row["settings"]) if row.get("settings") else None
    for name in ("cost_cap", "estimate", "spent"):
        micro = out.pop(f"{name}_micro_usd")
        out[f"{name}_usd"] = None if micro is None else micro / 1_000_000
    return out


# -- lesson recordings ---------------------------------------------------------------------------


def save_lesson(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    conn.execute(delete(loadtest_lessons).where(
        loadtest_lessons.c.tenant == values["tenant"], loadtest_lessons.c.name == values["name"]
    ))
    conn.execute(insert(loadtest_lessons).values(**values))
    found = lesson_row(conn, values["tenant"], values["name"])
    assert found is not None
    return found


def lesson_row(conn: Connection, tenant: str, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(loadtest_lessons).where(
        loadtest_lessons.c.tenant == tenant, loadtest_lessons.c.name == name
    )).mappings().first()
    return dict(row) if row else None


def lesson_rows(conn: Connection, tenant: str | None) -> list[dict[str, Any]]:
    query = select(loadtest_lessons).order_by(loadtest_lessons.c.tenant, loadtest_lessons.c.name)
    if tenant is not None:
        query = query.where(loadtest_lessons.c.tenant == tenant)
    return [dict(r) for r in conn.execute(query).mappings()]
