"""Teachers' pauses and admins' quota overrides: stored in the history database, kept
in memory for the checks on every call.

Plain Python, no web framework. Admission asks :meth:`Controls.pause_for` and
:meth:`Controls.override_for` on each call; the API changes them through the other
methods, which write the database first and then the memory, so a restart reads back
exactly what was answered. On a server database (replicas share it) they are read again
every second, so a pause made through one replica holds on all within a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.history.models import pauses, quota_overrides
from gateway.history.store import HistoryStore

PAUSABLE_ROLES = {"student", "viewer"}
FOLLOW_SECONDS = 1.0  # how stale another replica's view of a pause may be
log = logging.getLogger("gateway.admission")


class Controls:
    def __init__(self, history: HistoryStore | None) -> None:
        self.history = history
        self._overrides: dict[str, dict[str, Any]] = {}
        self._pauses: list[dict[str, Any]] = []

    async def load(self) -> None:
        """Overrides and pauses from the database (at start)."""
        if self.history is None:
            return

        def read(conn: Connection) -> tuple[list[Any], list[Any]]:
            return (
                [dict(r) for r in conn.execute(select(quota_overrides)).mappings()],
                [dict(r) for r in conn.execute(select(pauses)).mappings()],
            )

        overrides, paused = await self.history.read(read)
        self._overrides = {row["user"]: row for row in overrides}
        self._pauses = paused

    async def follow(self, every: float) -> None:
        """Read them again every ``every`` seconds, for as long as the gateway runs: replicas
        sharing one database see a pause or an override made through another one."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.load()
            except Exception:  # noqa: BLE001 - the database is away: keep what we have
                log.warning("pauses and overrides not read again (the database is away)")

    def override_for(self, user: str) -> dict[str, Any] | None:
        return self._overrides.get(user)

    def pause_for(self, identity: Identity) -> dict[str, Any] | None:
        if identity.role not in PAUSABLE_ROLES:
            return None
        for pause in self._pauses:
            if pause["tenant"] == identity.tenant and pause["user"] in (None, identity.name):
                return pause
        return None

    async def pause(
        self, tenant: str, user: str | None, by: str, reason: str | None
    ) -> dict[str, Any]:
        assert self.history is not None, "controls need the history database"
        row = {
            "tenant": tenant,
            "user": user,
            "paused_by": by,
            "reason": reason,
            "created_at": time.time(),
        }

        def write(conn: Connection) -> int:
            inserted = conn.execute(insert(pauses).values(**row)).inserted_primary_key
            assert inserted is not None
            return int(inserted[0])

        row["id"] = await self.history.write(write)
        self._pauses.append(row)
        return row

    async def resume(self, pause_id: int) -> dict[str, Any] | None:
        assert self.history is not None, "controls need the history database"
        found = next((p for p in self._pauses if p["id"] == pause_id), None)
        if found is None:
            return None

        def write(conn: Connection) -> None:
            conn.execute(delete(pauses).where(pauses.c.id == pause_id))

        await self.history.write(write)
        self._pauses.remove(found)
        return found

    def pauses_of(self, tenant: str | None) -> list[dict[str, Any]]:
        return [p for p in self._pauses if tenant is None or p["tenant"] == tenant]

    async def set_override(
        self, user: str, tenant: str, by: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        assert self.history is not None, "controls need the history database"
        row = {
            "user": user,
            "tenant": tenant,
            "updated_by": by,
            "updated_at": time.time(),
            **values,
        }

        def write(conn: Connection) -> None:
            conn.execute(delete(quota_overrides).where(quota_overrides.c.user == user))
            conn.execute(insert(quota_overrides).values(**row))

        await self.history.write(write)
        self._overrides[user] = row
        return row

    async def clear_override(self, user: str) -> bool:
        assert self.history is not None, "controls need the history database"

        def write(conn: Connection) -> None:
            conn.execute(delete(quota_overrides).where(quota_overrides.c.user == user))

        await self.history.write(write)
        return self._overrides.pop(user, None) is not None

    def overrides_of(self, tenant: str | None) -> list[dict[str, Any]]:
        return [o for o in self._overrides.values() if tenant is None or o["tenant"] == tenant]
