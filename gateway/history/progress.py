"""Lesson progress, exactly: who ran which lesson, how far, and when.

Every call from a lab's kernel records the notebook and cell it came from
(:mod:`gateway.edge.origin`). A *lesson* is a notebook under ``lessons/`` in the home
(where the lessons of the repository and those teachers publish arrive); *how far*
is the place, among the lesson's code cells, of the cells that called a model:

- ``last_position``: the cell of the student's latest call (where they are now);
- ``furthest_position``: the furthest cell that ever called a model;
- ``cells``: the lesson's code cells, as the student's copy was saved at that call.

Plain SQLAlchemy Core, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from gateway.history.models import runs

LESSONS_FOLDER = "lessons/"


@dataclass(frozen=True)
class ProgressFilter:
    """Whose progress; ``None`` means no restriction. Times are UNIX seconds."""

    tenant: str | None = None
    user: str | None = None
    start: float | None = None
    end: float | None = None
    folder: str = LESSONS_FOLDER

    def conditions(self) -> list[Any]:
        # LIKE with the folder's own characters escaped: "lessons/" has none, but a caller's may.
        pattern = self.folder.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where: list[Any] = [runs.c.notebook.like(pattern + "%", escape="\\")]
        if self.tenant is not None:
            where.append(runs.c.tenant == self.tenant)
        if self.user is not None:
            where.append(runs.c.user == self.user)
        if self.start is not None:
            where.append(runs.c.queued_at >= self.start)
        if self.end is not None:
            where.append(runs.c.queued_at < self.end)
        return where


def lesson_progress(connection: Connection, flt: ProgressFilter) -> list[dict[str, Any]]:
    """One row per (student, lesson) with calls, ordered by student then lesson.

    Each row: ``user``, ``tenant``, ``lesson`` (the notebook's path), ``calls``,
    ``errors``, ``first_at``, ``last_at`` (UNIX seconds), ``last_cell``,
    ``last_position``, ``furthest_position``, ``cells`` and ``fraction``
    (furthest over cells; None while no call came from a known cell).
    """
    where = flt.conditions()
    errors = func.sum(case((runs.c.status.in_(("error", "interrupted")), 1), else_=0))
    totals = (
        select(
            runs.c.user, runs.c.tenant, runs.c.notebook, func.count().label("calls"),
            errors.label("errors"), func.min(runs.c.queued_at).label("first_at"),
            func.max(runs.c.queued_at).label("last_at"),
            func.max(runs.c.cell_position).label("furthest_position"),
        )
        .where(*where)
        .group_by(runs.c.user, runs.c.tenant, runs.c.notebook)
    )
    # The latest call that came from a known cell, per (student, lesson).
    latest = (
        select(func.max(runs.c.id).label("id"))
        .where(*where, runs.c.cell.is_not(None))
        .group_by(runs.c.user, runs.c.tenant, runs.c.notebook)
        .subquery()
    )
    last_rows = select(runs.c.user, runs.c.tenant, runs.c.notebook, runs.c.cell,
                       runs.c.cell_position, runs.c.cell_count).join(
        latest, and_(runs.c.id == latest.c.id))
    last = {(r.user, r.tenant, r.notebook): r for r in connection.execute(last_rows)}
    rows: list[dict[str, Any]] = []
    for row in connection.execute(totals):
        key = (row.user, row.tenant, row.notebook)
        at = last.get(key)
        cells = at.cell_count if at is not None else None
        furthest = row.furthest_position
        rows.append({
            "user": row.user, "tenant": row.tenant, "lesson": row.notebook,
            "calls": int(row.calls), "errors": int(row.errors or 0),
            "first_at": row.first_at, "last_at": row.last_at,
            "last_cell": at.cell if at is not None else None,
            "last_position": at.cell_position if at is not None else None,
            "furthest_position": furthest, "cells": cells,
            "fraction": (min(furthest, cells) / cells) if furthest and cells else None,
        })
    rows.sort(key=lambda r: (r["user"], r["lesson"]))
    return rows
