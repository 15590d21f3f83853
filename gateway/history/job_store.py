"""Asynchronous media jobs (video, Midjourney-style): one row each, updated as they run."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from gateway.history.models import jobs
from gateway.history.store import HistoryStore

UNFINISHED = ("queued", "running")


class JobStore:
    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    async def create(self, row: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        row = {"status": "queued", "progress": 0.0, "created_at": now, "updated_at": now, **row}
        row["params"] = json.dumps(row.get("params") or {}, sort_keys=True)

        def write(connection: Connection) -> None:
            connection.execute(insert(jobs).values(**row))

        await self.history.write(write)
        return row

    async def update(self, job_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        if values.get("status") in ("succeeded", "failed"):
            values.setdefault("finished_at", values["updated_at"])

        def write(connection: Connection) -> None:
            connection.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

        await self.history.write(write)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        def read(connection: Connection) -> dict[str, Any] | None:
            row = connection.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
            return dict(row) if row else None

        return await self.history.read(read)

    async def find(self, *, user: str, kind: str | None = None, status: str | None = None,
                   limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        conditions = [jobs.c.user == user]
        if kind is not None:
            conditions.append(jobs.c.kind == kind)
        if status is not None:
            conditions.append(jobs.c.status == status)

        def read(connection: Connection) -> list[dict[str, Any]]:
            query = (select(jobs).where(*conditions).order_by(jobs.c.created_at.desc())
                     .limit(limit).offset(offset))
            return [dict(r) for r in connection.execute(query).mappings().all()]

        return await self.history.read(read)

    async def fail_unfinished(self) -> int:
        """Jobs a previous gateway left running can never finish here: say so."""

        def write(connection: Connection) -> int:
            result = connection.execute(
                update(jobs).where(jobs.c.status.in_(UNFINISHED)).values(
                    status="failed", error_code="gateway_restarted",
                    error_message="The gateway stopped while this job was running. Start it "
                    "again.", updated_at=time.time(), finished_at=time.time(),
                )
            )
            return int(result.rowcount or 0)

        return await self.history.write(write)


def job_public(row: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    def iso(value: float | None) -> str | None:
        return datetime.fromtimestamp(value, UTC).isoformat() if value else None

    error = None
    if row["status"] == "failed":
        error = {"code": row["error_code"], "message": row["error_message"]}
    return {
        "id": row["id"], "kind": row["kind"], "model": row["model"], "provider": row["provider"],
        "status": row["status"], "progress": round(float(row["progress"]), 3), "error": error,
        "prompt": row["prompt"], "params": json.loads(row["params"] or "{}"),
        "user": row["user"], "run_id": row["run_id"],
        "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
        "finished_at": iso(row["finished_at"]), "artifacts": artifacts,
    }
