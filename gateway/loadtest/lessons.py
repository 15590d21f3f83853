"""A lesson's calls, taken from a recorded run in the history, and the pool's real limits.

A *lesson recording* is a selection of history rows: the calls of one user
between two times (a teacher going through the lesson notebook before class),
optionally only those of one source (``widget``, ``sdk``). Recordings can be
saved under a name (``03``) per school, so ``classroom loadtest replay --lesson
03`` finds them again. The successful chat and media calls of the selection,
in order, become the lesson's :class:`~gateway.loadtest.simulate.Step` list: the
provider's time (``finished_at - started_at``), the pause before each call
(since the previous answer), and the tokens counted against TPM windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from gateway.history.models import runs
from gateway.keypool import ProviderKey
from gateway.loadtest.plans import Call
from gateway.loadtest.simulate import KeyLimits, Step

MAX_STEPS = 500


class LessonError(ValueError):
    """A selection that names no calls, or a time that cannot be read."""


@dataclass(frozen=True)
class LessonSelector:
    tenant: str | None = None
    user: str | None = None
    since: float | None = None
    until: float | None = None
    source: str | None = None

    def public(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "user": self.user, "since": self.since,
                "until": self.until, "source": self.source}


def parse_time(value: Any, field: str) -> float | None:
    """UNIX seconds, or an ISO 8601 time (``2026-11-21T10:00:00+00:00``)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise LessonError(f"{field}: give UNIX seconds or an ISO 8601 time, not {value!r}")


def select_calls(conn: Connection, selector: LessonSelector) -> list[dict[str, Any]]:
    """The recorded calls a lesson made, oldest first (load tests' own calls excluded)."""
    if selector.user is None and selector.source is None:
        raise LessonError("say whose calls make the lesson (user) or where they came from "
                          "(source)")
    conditions = [runs.c.status == "ok", runs.c.provider.is_not(None),
                  runs.c.source != "loadtest", runs.c.finished_at.is_not(None)]
    if selector.tenant is not None:
        conditions.append(runs.c.tenant == selector.tenant)
    if selector.user is not None:
        conditions.append(runs.c.user == selector.user)
    if selector.source is not None:
        conditions.append(runs.c.source == selector.source)
    if selector.since is not None:
        conditions.append(runs.c.queued_at >= selector.since)
    if selector.until is not None:
        conditions.append(runs.c.queued_at <= selector.until)
    query = (select(runs.c.id, runs.c.user, runs.c.kind, runs.c.provider, runs.c.model,
                    runs.c.stream, runs.c.queued_at, runs.c.started_at, runs.c.finished_at,
                    runs.c.prompt_tokens, runs.c.completion_tokens, runs.c.request_text)
             .where(*conditions).order_by(runs.c.queued_at, runs.c.id).limit(MAX_STEPS))
    return [dict(r) for r in conn.execute(query).mappings()]


def steps_from_calls(calls: Sequence[dict[str, Any]]) -> list[Step]:
    """Steps of a lesson: each call's provider time and the pause before it."""
    steps: list[Step] = []
    previous_end: float | None = None
    for call in calls:
        began = call["started_at"] or call["queued_at"]
        service = max(0.0, float(call["finished_at"]) - float(began))
        gap = 0.0 if previous_end is None else max(0.0, float(call["queued_at"]) - previous_end)
        previous_end = float(call["finished_at"])
        completion = call.get("completion_tokens")
        steps.append(Step(
            provider=call["provider"], model=call["model"], service_s=service, gap_s=gap,
            tokens=int(call.get("prompt_tokens") or 0) + int(completion or 0),
            prompt=call.get("request_text") or None,
            max_tokens=int(completion) if completion else None,
            stream=bool(call.get("stream")),
        ))
    return steps


def steps_to_calls(steps: Iterable[Step]) -> list[Call]:
    """The calls a simulated student makes to replay a lesson live (chat steps)."""
    return [
        Call(model=s.model, prompt=s.prompt or "Replay of a recorded lesson call.",
             max_tokens=s.max_tokens, stream=s.stream, gap_s=s.gap_s)
        for s in steps
    ]


def pool_limits(keys: Iterable[ProviderKey], tenant: str | None) -> list[KeyLimits]:
    """The limits of the active keys that serve ``tenant`` (all schools' when None)."""
    return [
        KeyLimits(k.provider, k.name, k.concurrency_limit, k.rpm_limit, k.tpm_limit, k.priority)
        for k in keys
        if k.is_active and (tenant is None or k.serves(tenant))
    ]
