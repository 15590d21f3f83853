"""Artifacts (images, audio, video) and the non-token units of a run.

An artifact's bytes live under ``CLASSROOM_DATA_DIR/artifacts`` at a path made
from their SHA-256 (``ab/cdef…``), so the same bytes are stored once however
often they are made; its row says who made it, with which model and prompt,
and which history run (and job, and image session) it belongs to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from gateway.history.models import artifacts, run_units
from gateway.history.store import HistoryStore

KIND_OF_MIME = {"image": "image", "audio": "audio", "video": "video"}
UNIT_COLUMNS = ("images", "characters", "seconds", "tasks")


async def record_units(store: HistoryStore, run_id: int, units: dict[str, float]) -> None:
    values = {k: v for k, v in units.items() if k in UNIT_COLUMNS}
    if not values:
        return

    def write(connection: Connection) -> None:
        connection.execute(insert(run_units).values(run_id=run_id, **values))

    await store.write(write)


def artifact_kind(mime: str) -> str:
    return KIND_OF_MIME.get(mime.split("/")[0], "file")


@dataclass
class NewArtifact:
    user: str
    tenant: str
    mime: str
    data: bytes
    model: str | None = None
    prompt: str | None = None
    run_id: int | None = None
    job_id: str | None = None
    session_id: str | None = None
    meta: dict[str, Any] | None = None
    kind: str | None = None  # what it is for the gallery, when the MIME type does not say


class ArtifactStore:
    def __init__(self, history: HistoryStore, root: Path) -> None:
        self.history = history
        self.root = root

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:]

    def _write_file(self, data: bytes, sha256: str) -> None:
        path = self.path_of(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write then rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def save(self, new: NewArtifact) -> dict[str, Any]:
        sha256 = hashlib.sha256(new.data).hexdigest()
        await asyncio.get_running_loop().run_in_executor(None, self._write_file, new.data, sha256)
        row = {
            "id": "art_" + secrets.token_hex(12), "user": new.user, "tenant": new.tenant,
            "kind": new.kind or artifact_kind(new.mime), "mime": new.mime,
            "size": len(new.data),
            "sha256": sha256, "model": new.model, "prompt": new.prompt, "run_id": new.run_id,
            "job_id": new.job_id, "session_id": new.session_id,
            "meta": json.dumps(new.meta or {}, sort_keys=True), "created_at": time.time(),
        }

        def write(connection: Connection) -> None:
            connection.execute(insert(artifacts).values(**row))

        await self.history.write(write)
        return row

    async def get(self, artifact_id: str) -> dict[str, Any] | None:
        def read(connection: Connection) -> dict[str, Any] | None:
            found = connection.execute(
                select(artifacts).where(artifacts.c.id == artifact_id)
            ).mappings().first()
            return dict(found) if found else None

        return await self.history.read(read)

    async def read_bytes(self, row: dict[str, Any]) -> bytes:
        path = self.path_of(row["sha256"])
        return await asyncio.get_running_loop().run_in_executor(None, path.read_bytes)

    async def find(
        self, *, user: str | None = None, kind: str | None = None, session_id: str | None = None,
        run_id: int | None = None, job_id: str | None = None, limit: int = 50, offset: int = 0,
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        conditions = []
        for column, value in ((artifacts.c.user, user), (artifacts.c.kind, kind),
                              (artifacts.c.session_id, session_id), (artifacts.c.run_id, run_id),
                              (artifacts.c.job_id, job_id)):
            if value is not None:
                conditions.append(column == value)
        order = (artifacts.c.created_at.asc() if oldest_first else artifacts.c.created_at.desc())

        def read(connection: Connection) -> list[dict[str, Any]]:
            query = select(artifacts).where(*conditions).order_by(order, artifacts.c.id)
            rows = connection.execute(query.limit(limit).offset(offset)).mappings().all()
            return [dict(r) for r in rows]

        return await self.history.read(read)


def artifact_public(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An artifact as the API shows it: no file path, an URL to fetch the bytes."""
    from datetime import UTC, datetime

    return {
        "id": row["id"], "kind": row["kind"], "mime": row["mime"], "size": row["size"],
        "model": row["model"], "prompt": row["prompt"],
        "created_at": datetime.fromtimestamp(row["created_at"], UTC).isoformat(),
        "run_id": row["run_id"], "job_id": row["job_id"], "session_id": row["session_id"],
        "meta": json.loads(row["meta"] or "{}"),
        "url": f"{base_url.rstrip('/')}/api/artifacts/{row['id']}",
    }
