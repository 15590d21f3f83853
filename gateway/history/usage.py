"""Usage aggregates over the history: who spent what, on which model, and is anything broken.

Plain Python over SQLAlchemy Core, no web framework: the ``/api/usage*``,
``/api/activity`` and ``/api/students/*`` routers and the admin notebooks'
numbers all come from here.

Definitions (one place, so every view agrees):

- a *request* is one row of ``runs``: refused calls count too;
- an *error* is a run whose status is ``error`` or ``interrupted``;
- *latency* is ``finished_at - started_at`` of successful runs, in ms;
  percentiles are linear between closest ranks (numpy's default);
- *cost* is the recorded ``cost_micro_usd`` (unpriced runs count as 0 and are
  counted separately in ``unpriced_requests``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from gateway.history.models import runs
from gateway.pricing import Catalog, TokenUsage, token_cost

GROUP_BY: tuple[str, ...] = (
    "day", "hour", "user", "model", "provider", "tenant", "source", "kind", "notebook", "none",
)
# One dimension or several, comma-separated: "day", "day,tenant,model".
_ONE = "|".join(GROUP_BY)
GROUP_BY_PATTERN = rf"^({_ONE})(,({_ONE}))*$"
ERROR_STATUSES = ("error", "interrupted")
MICRO = 1_000_000

_COLUMNS = (
    runs.c.id, runs.c.user, runs.c.tenant, runs.c.role, runs.c.source, runs.c.kind,
    runs.c.provider, runs.c.model, runs.c.status, runs.c.error_code, runs.c.queued_at,
    runs.c.started_at, runs.c.first_token_at, runs.c.finished_at, runs.c.prompt_tokens,
    runs.c.completion_tokens, runs.c.cost_micro_usd, runs.c.cost_status, runs.c.notebook,
)


@dataclass(frozen=True)
class UsageFilter:
    """Which runs to count; ``None`` means no restriction. Times are UNIX seconds."""

    start: float | None = None
    end: float | None = None
    tenant: str | None = None
    user: str | None = None
    provider: str | None = None
    model: str | None = None
    source: str | None = None
    session: str | None = None  # a conversation: the calls made for its messages
    notebook: str | None = None  # the lab path calls came from (lessons/01_first_chat.ipynb)

    def conditions(self) -> list[Any]:
        where: list[Any] = []
        if self.session is not None:
            from gateway.history.conversations import session_runs

            where.append(runs.c.id.in_(session_runs(self.session)))
        if self.start is not None:
            where.append(runs.c.queued_at >= self.start)
        if self.end is not None:
            where.append(runs.c.queued_at < self.end)
        for name in ("tenant", "user", "provider", "model", "source", "notebook"):
            value = getattr(self, name)
            if value is not None:
                where.append(getattr(runs.c, name) == value)
        return where


def iter_runs(connection: Connection, flt: UsageFilter) -> Iterator[Mapping[Any, Any]]:
    """The columns aggregates need (never prompt or response text), one row at a time:
    an aggregate over a month keeps its totals, not the month's rows."""
    query = select(*_COLUMNS).where(*flt.conditions()).order_by(runs.c.id)
    yield from connection.execute(query).mappings()


def iter_live(connection: Connection, flt: UsageFilter, since: float
              ) -> Iterator[Mapping[Any, Any]]:
    """What :func:`activity` reads: runs queued since ``since``, and every run still
    running, one at a time."""
    query = (select(*_COLUMNS)
             .where(*flt.conditions(), or_(runs.c.queued_at >= since, runs.c.status == "running"))
             .order_by(runs.c.id))
    yield from connection.execute(query).mappings()


def select_runs(connection: Connection, flt: UsageFilter) -> list[dict[str, Any]]:
    """:func:`iter_runs` as a list of plain dicts."""
    return [dict(row) for row in iter_runs(connection, flt)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return round(value, 1)


def _latency_ms(row: Mapping[str, Any]) -> float | None:
    if row["status"] != "ok" or not row["started_at"] or not row["finished_at"]:
        return None
    return (row["finished_at"] - row["started_at"]) * 1000


def _ttft_ms(row: Mapping[str, Any]) -> float | None:
    if row["status"] != "ok" or not row["started_at"] or not row["first_token_at"]:
        return None
    return (row["first_token_at"] - row["started_at"]) * 1000


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    running: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    micro_usd: int = 0
    unpriced: int = 0
    users: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)

    def add(self, row: Mapping[str, Any]) -> None:
        self.requests += 1
        self.errors += row["status"] in ERROR_STATUSES
        self.running += row["status"] == "running"
        self.prompt_tokens += row["prompt_tokens"] or 0
        self.completion_tokens += row["completion_tokens"] or 0
        self.micro_usd += row["cost_micro_usd"] or 0
        self.unpriced += row["cost_status"] == "unpriced"
        self.users.add(row["user"])
        latency, ttft = _latency_ms(row), _ttft_ms(row)
        if latency is not None:
            self.latencies.append(latency)
        if ttft is not None:
            self.ttfts.append(ttft)

    def public(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "running": self.running,
            "users": len(self.users),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost_usd": self.micro_usd / MICRO,
            "unpriced_requests": self.unpriced,
            "latency_ms_p50": percentile(self.latencies, 50),
            "latency_ms_p95": percentile(self.latencies, 95),
            "latency_ms_p99": percentile(self.latencies, 99),
            "ttft_ms_p50": percentile(self.ttfts, 50),
        }


def _value(row: Mapping[str, Any], dimension: str) -> str:
    if dimension == "none":
        return "all"
    if dimension in ("day", "hour"):
        moment = datetime.fromtimestamp(row["queued_at"], UTC)
        if dimension == "day":
            return moment.date().isoformat()
        return moment.replace(minute=0, second=0, microsecond=0).isoformat()
    value = row.get(dimension)
    return str(value) if value is not None else "(none)"


def dimensions(group_by: str | Sequence[str]) -> list[str]:
    """``"day,model"`` or ``["day", "model"]`` as a checked list of dimensions."""
    names = group_by.split(",") if isinstance(group_by, str) else list(group_by)
    names = [n.strip() for n in names if n.strip()] or ["none"]
    unknown = [n for n in names if n not in GROUP_BY]
    if unknown:
        raise ValueError(f"group_by must be made of {', '.join(GROUP_BY)}; not {unknown}")
    return names


def aggregate(rows: Iterable[Mapping[str, Any]], group_by: str | Sequence[str] = "none"
              ) -> dict[str, Any]:
    """Rows grouped by one or more dimensions (ordered), and the totals over all of them.

    Each group row has ``key`` (the values joined by `` / ``), one field per
    dimension (``day``, ``model``, ...) and the metrics.
    """
    dims = dimensions(group_by)
    groups: dict[tuple[str, ...], Totals] = {}
    overall = Totals()
    for row in rows:
        groups.setdefault(tuple(_value(row, d) for d in dims), Totals()).add(row)
        overall.add(row)
    return {
        "group_by": ",".join(dims),
        "rows": [
            {"key": " / ".join(key), **dict(zip(dims, key, strict=True)), **groups[key].public()}
            for key in sorted(groups)
        ],
        "totals": overall.public(),
    }


# -- periods --------------------------------------------------------------------------


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_month(now: datetime) -> datetime:
    return (month_start(now) + timedelta(days=32)).replace(day=1)


def parse_time(value: str | None, *, end: bool = False) -> float | None:
    """``YYYY-MM-DD`` or an ISO date-time (UTC when no zone) as UNIX seconds.

    A bare date as an ``end`` means the end of that day, so ``start=end=date`` is one day.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


# -- the caller's own use ------------------------------------------------------------------


def own_usage(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """Today's and this month's numbers of one user's rows (rows of this month at least)."""
    today, month = day_start(now).timestamp(), month_start(now).timestamp()
    totals = {"today": Totals(), "month": Totals()}
    for row in rows:
        if row["queued_at"] >= month:
            totals["month"].add(row)
        if row["queued_at"] >= today:
            totals["today"].add(row)
    return {name: t.public() for name, t in totals.items()}


# -- cost estimate (the seed API's cost-estimation, over the history) ------------------------------


def estimate(
    rows: Iterable[Mapping[str, Any]], catalog: Catalog, start: float, end: float, now: float
) -> dict[str, Any]:
    """Cost of the period by model: as recorded, at today's prices, and projected to ``end``.

    Runs without a recorded cost but with tokens are priced from the catalog
    (``estimated``); models without a price are listed as ``unpriced``. When the
    period reaches past ``now``, the spend so far is extended at its daily rate.
    """
    by_model: dict[str, dict[str, Any]] = {}
    for row in rows:
        model = row["model"] or "(none)"
        entry = by_model.setdefault(model, {
            "model": model, "provider": row["provider"], "requests": 0,
            "prompt_tokens": 0, "completion_tokens": 0, "recorded_micro_usd": 0,
            "at_current_prices_micro_usd": 0, "priced": True,
        })
        entry["requests"] += 1
        prompt, completion = row["prompt_tokens"] or 0, row["completion_tokens"] or 0
        entry["prompt_tokens"] += prompt
        entry["completion_tokens"] += completion
        entry["recorded_micro_usd"] += row["cost_micro_usd"] or 0
        info = catalog.get(model)
        if info is None or not info.priced:
            if prompt or completion:
                entry["priced"] = False
            entry["at_current_prices_micro_usd"] += row["cost_micro_usd"] or 0
            continue
        cost = token_cost(info, TokenUsage(prompt_tokens=prompt, completion_tokens=completion))
        entry["at_current_prices_micro_usd"] += cost.micro_usd or 0

    models = []
    for entry in sorted(by_model.values(), key=lambda e: -e["at_current_prices_micro_usd"]):
        models.append({
            "model": entry["model"], "provider": entry["provider"], "requests": entry["requests"],
            "prompt_tokens": entry["prompt_tokens"],
            "completion_tokens": entry["completion_tokens"],
            "recorded_usd": entry["recorded_micro_usd"] / MICRO,
            "at_current_prices_usd": entry["at_current_prices_micro_usd"] / MICRO,
            "priced": entry["priced"],
        })
    recorded = sum(e["recorded_micro_usd"] for e in by_model.values())
    current = sum(e["at_current_prices_micro_usd"] for e in by_model.values())
    observed_end = min(end, now)
    observed_days = max((observed_end - start) / 86400, 1 / 24)  # at least an hour
    period_days = (end - start) / 86400
    daily = current / observed_days if observed_end > start else 0.0
    projected = current + daily * max(0.0, (end - observed_end) / 86400)
    return {
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(end, UTC).isoformat(),
        "days": round(period_days, 3),
        "observed_days": round(max(0.0, observed_end - start) / 86400, 3),
        "recorded_usd": recorded / MICRO,
        "at_current_prices_usd": current / MICRO,
        "daily_rate_usd": round(daily / MICRO, 6),
        "projected_usd": round(projected / MICRO, 6),
        "unpriced_models": sorted(e["model"] for e in by_model.values() if not e["priced"]),
        "models": models,
        "catalog_version": catalog.version,
    }


# -- activity right now ----------------------------------------------------------------------


def activity(
    rows: Iterable[Mapping[str, Any]], now: float, window_minutes: int = 15
) -> dict[str, Any]:
    """The seed dashboard's live monitoring: what runs now, and the last minutes per minute.

    ``rows`` are the runs queued since ``now - window`` plus every run still running, in id
    order. They are summed in one pass as they are read: a dashboard polled all day keeps
    no window of rows in memory.
    """
    window_start = now - window_minutes * 60
    running: list[dict[str, Any]] = []
    minutes: dict[int, Totals] = {}
    window = Totals()
    active_users: dict[str, float] = {}
    errors: deque[dict[str, Any]] = deque(maxlen=20)
    for row in rows:
        queued = row["queued_at"]
        if row["status"] == "running":
            running.append({
                "id": row["id"], "user": row["user"], "tenant": row["tenant"],
                "model": row["model"], "provider": row["provider"], "source": row["source"],
                "kind": row["kind"], "queued_at": datetime.fromtimestamp(queued, UTC).isoformat(),
                "elapsed_s": round(now - queued, 1), "_queued": queued,
            })
        if queued < window_start:
            continue
        minutes.setdefault(int(queued // 60), Totals()).add(row)
        window.add(row)
        active_users[row["user"]] = max(active_users.get(row["user"], 0.0), queued)
        if row["status"] in ERROR_STATUSES:
            errors.append({"id": row["id"], "user": row["user"], "model": row["model"],
                           "error_code": row["error_code"],
                           "at": datetime.fromtimestamp(queued, UTC).isoformat()})
    running.sort(key=lambda r: r.pop("_queued"))
    first = int(window_start // 60) + 1
    per_minute = []
    for minute in range(first, int(now // 60) + 1):
        totals = minutes.get(minute, Totals())
        per_minute.append({
            "minute": datetime.fromtimestamp(minute * 60, UTC).isoformat(),
            "requests": totals.requests, "errors": totals.errors,
            "cost_usd": totals.micro_usd / MICRO,
        })
    return {
        "now": datetime.fromtimestamp(now, UTC).isoformat(),
        "window_minutes": window_minutes,
        "running": running,
        "active_users": [
            {"user": u, "last_request_at": datetime.fromtimestamp(t, UTC).isoformat()}
            for u, t in sorted(active_users.items(), key=lambda item: -item[1])
        ],
        "per_minute": per_minute,
        "window": window.public(),
        "recent_errors": list(reversed(errors)),
    }
