"""Admission before a provider call: pauses, quotas and budget reservations.

The pipeline wraps every provider call (every kind: chat, embeddings, images,
speech, jobs) in::

    async with admission.admit(identity, model, estimate) as ticket:
        ...                                    # lease a key, call the provider
        ticket.settle(cost_micro_usd, tokens)  # the real cost; unsettled = released

Before the call the worst case is *reserved* (input estimate plus the output
limit at the output price; per image, character or second for media), and the
checks count reservations as spent. Checking and reserving happen with no
``await`` in between on the gateway's one event loop, so fifty calls racing for
the last cent cannot all pass: at most the ones whose worst case fits do.
Afterwards the reservation is replaced by the real cost, or released if the
call failed. Plain Python: no web framework.

Limits come from the school's file, per role (``quotas``), overridden per user
by admins (``quota_overrides``). Counters start from the history (so a restart
does not reset anyone's day) and are then kept in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.errors import BudgetExceeded, PausedByTeacher, QuotaExceeded, RateLimited
from gateway.history.models import pauses, quota_overrides, runs
from gateway.history.store import HistoryStore
from gateway.pricing import ModelInfo
from gateway.tenants import RoleQuota, Tenant

PAUSABLE_ROLES = {"student", "viewer"}


@dataclass(frozen=True)
class CallEstimate:
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    worst_case_micro_usd: int | None = None  # None: unpriced (only request/token limits apply)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_output_tokens


class Ticket:
    def __init__(self) -> None:
        self.cost_micro_usd: int | None = None
        self.tokens = 0
        self.settled = False

    def settle(self, cost_micro_usd: int | None, tokens: int) -> None:
        self.cost_micro_usd, self.tokens, self.settled = cost_micro_usd, tokens, True


@dataclass
class Usage:
    """One user's counters: settled amounts plus what running calls have reserved."""

    day: str
    month: str
    requests: int = 0
    tokens: int = 0
    micro_usd: int = 0
    reserved_requests: int = 0
    reserved_tokens: int = 0
    reserved_micro_usd: int = 0
    running: int = 0

    def roll(self, day: str, month: str) -> None:
        if day != self.day:
            self.day, self.requests, self.tokens = day, 0, 0
        if month != self.month:
            self.month, self.micro_usd = month, 0


@dataclass
class Limits:
    requests_per_day: int | None = None
    tokens_per_day: int | None = None
    micro_usd_per_month: int | None = None
    concurrent_requests: int | None = None
    overridden: list[str] = field(default_factory=list)


def _periods(now: datetime) -> tuple[str, str, datetime, datetime]:
    """The day and month ``now`` falls in (as keys) and when each ends."""
    return _periods_of(now.date(), now.tzinfo)


@lru_cache(maxsize=16)
def _periods_of(day: date, tz: tzinfo | None) -> tuple[str, str, datetime, datetime]:
    day_start = datetime(day.year, day.month, day.day, tzinfo=tz)
    month_start = day_start.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    return (
        day_start.date().isoformat(),
        month_start.strftime("%Y-%m"),
        day_start + timedelta(days=1),
        next_month,
    )


def _in(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def usd(micro: int) -> str:
    return (
        f"${micro / 1_000_000:,.2f}"
        if micro >= 10_000 or micro == 0
        else f"${micro / 1_000_000:.4f}"
    )


class Admission:
    def __init__(
        self,
        history: HistoryStore | None = None,
        tenants: dict[str, Tenant] | None = None,
        *,
        global_concurrency: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.history = history
        self.tenants = tenants or {}
        self.global_concurrency = global_concurrency
        self.clock = clock or (lambda: datetime.now(UTC))
        self.running_total = 0
        self.running_loadtest = 0
        self._usage: dict[str, Usage] = {}
        self._loading: dict[str, asyncio.Future[Usage]] = {}
        self._overrides: dict[str, dict[str, Any]] = {}
        self._pauses: list[dict[str, Any]] = []

    # -- state from the database -------------------------------------------------

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

    async def _user_usage(self, identity: Identity) -> Usage:
        now = self.clock()
        day, month, _, _ = _periods(now)
        usage = self._usage.get(identity.name)
        if usage is not None:
            usage.roll(day, month)
            return usage
        pending = self._loading.get(identity.name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Usage] = asyncio.get_running_loop().create_future()
        self._loading[identity.name] = future
        try:
            usage = await self._read_usage(identity.name, now)
            self._usage[identity.name] = usage
            future.set_result(usage)
            return usage
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._loading.pop(identity.name, None)

    async def _read_usage(self, user: str, now: datetime) -> Usage:
        day, month, _, _ = _periods(now)
        usage = Usage(day=day, month=month)
        if self.history is None:
            return usage
        day_start = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        month_start = datetime.fromisoformat(month + "-01").replace(tzinfo=UTC).timestamp()
        metered = runs.c.prompt_tokens.is_not(None)

        def read(conn: Connection) -> tuple[int, int, int]:
            requests, tokens = conn.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.sum(runs.c.prompt_tokens + func.coalesce(runs.c.completion_tokens, 0)),
                        0,
                    ),
                ).where(runs.c.user == user, runs.c.queued_at >= day_start, metered)
            ).one()
            micro = conn.execute(
                select(func.coalesce(func.sum(runs.c.cost_micro_usd), 0)).where(
                    runs.c.user == user, runs.c.queued_at >= month_start
                )
            ).scalar_one()
            return int(requests), int(tokens), int(micro)

        usage.requests, usage.tokens, usage.micro_usd = await self.history.read(read)
        return usage

    # -- limits -------------------------------------------------------------------

    def limits_for(self, identity: Identity) -> Limits:
        tenant = self.tenants.get(identity.tenant)
        quota = tenant.quota_for(identity.role) if tenant else RoleQuota()
        limits = Limits(
            requests_per_day=quota.requests_per_day,
            tokens_per_day=quota.tokens_per_day,
            micro_usd_per_month=None
            if quota.usd_per_month is None
            else round(quota.usd_per_month * 1_000_000),
            concurrent_requests=quota.concurrent_requests,
        )
        override = self._overrides.get(identity.name)
        if override:
            for name in ("requests_per_day", "tokens_per_day", "concurrent_requests"):
                if override.get(name) is not None:
                    setattr(limits, name, int(override[name]))
                    limits.overridden.append(name)
            if override.get("usd_per_month") is not None:
                limits.micro_usd_per_month = round(float(override["usd_per_month"]) * 1_000_000)
                limits.overridden.append("usd_per_month")
        return limits

    def pause_for(self, identity: Identity) -> dict[str, Any] | None:
        if identity.role not in PAUSABLE_ROLES:
            return None
        for pause in self._pauses:
            if pause["tenant"] == identity.tenant and pause["user"] in (None, identity.name):
                return pause
        return None

    # -- admission ------------------------------------------------------------------

    def _check(
        self, identity: Identity, usage: Usage, limits: Limits, estimate: CallEstimate
    ) -> None:
        now = self.clock()
        _, _, next_day, next_month = _periods(now)
        pause = self.pause_for(identity)
        if pause is not None:
            whom = "you" if pause["user"] else "your whole class"
            raise PausedByTeacher(
                f"Your teacher ({pause['paused_by']}) has paused AI calls for {whom}"
                + (f": {pause['reason']}" if pause.get("reason") else ".")
                + " Wait until they resume them."
            )
        if self.global_concurrency is not None:
            # Load tests count against the cap, but never take a student's place under it.
            busy = self.running_total if identity.kind == "loadtest" else (
                self.running_total - self.running_loadtest
            )
            if busy >= self.global_concurrency:
                raise RateLimited(
                    f"The classroom is running {busy} AI calls at once, its limit. "
                    "Try again in a few seconds.",
                    retry_after=2,
                )
        if limits.concurrent_requests is not None and usage.running >= limits.concurrent_requests:
            raise QuotaExceeded(
                f"You already have {usage.running} calls running, and your limit is "
                f"{limits.concurrent_requests} at once. Wait for one to finish.",
                retry_after=1,
                details={"limit": "concurrent_requests"},
            )
        if limits.requests_per_day is not None:
            used = usage.requests + usage.reserved_requests
            if used + 1 > limits.requests_per_day:
                raise QuotaExceeded(
                    f"You have used {used} of your {limits.requests_per_day} requests for today. "
                    f"The count resets at 00:00 UTC (in {_in(next_day - now)}).",
                    retry_after=(next_day - now).total_seconds(),
                    details={
                        "limit": "requests_per_day",
                        "used": used,
                        "max": limits.requests_per_day,
                        "resets_at": next_day.isoformat(),
                    },
                )
        if limits.tokens_per_day is not None:
            used = usage.tokens + usage.reserved_tokens
            if used + estimate.tokens > limits.tokens_per_day:
                raise QuotaExceeded(
                    f"You have used {used:,} of your {limits.tokens_per_day:,} tokens for today, "
                    f"and this call may need up to {estimate.tokens:,}. Ask for fewer tokens "
                    "(max_tokens) or wait: the count resets at 00:00 UTC "
                    f"(in {_in(next_day - now)}).",
                    retry_after=(next_day - now).total_seconds(),
                    details={
                        "limit": "tokens_per_day",
                        "used": used,
                        "max": limits.tokens_per_day,
                        "resets_at": next_day.isoformat(),
                    },
                )
        if limits.micro_usd_per_month is not None and estimate.worst_case_micro_usd is not None:
            spent = usage.micro_usd + usage.reserved_micro_usd
            if spent + estimate.worst_case_micro_usd > limits.micro_usd_per_month:
                raise BudgetExceeded(
                    f"You have spent {usd(spent)} of your {usd(limits.micro_usd_per_month)} budget "
                    "for this month, and this call could cost up to "
                    f"{usd(estimate.worst_case_micro_usd)}. "
                    f"The budget resets on {next_month:%d %B} (UTC); a cheaper model or a smaller "
                    "max_tokens may still fit.",
                    details={
                        "limit": "usd_per_month",
                        "spent_usd": spent / 1e6,
                        "max_usd": limits.micro_usd_per_month / 1e6,
                        "resets_at": next_month.isoformat(),
                    },
                )

    def admit(self, identity: Identity, model: ModelInfo, estimate: CallEstimate) -> Admitted:
        """``async with admission.admit(...) as ticket``: checked and reserved on entry,
        released (and settled, if the ticket was) on exit."""
        return Admitted(self, identity, estimate)

    async def status(self, identity: Identity) -> dict[str, Any]:
        """What ``GET /api/me`` shows: limits, use, what remains, and when it resets."""
        usage = await self._user_usage(identity)
        limits = self.limits_for(identity)
        now = self.clock()
        _, _, next_day, next_month = _periods(now)

        def remaining(limit: int | None, used: int) -> int | None:
            return None if limit is None else max(0, limit - used)

        spent = usage.micro_usd + usage.reserved_micro_usd
        pause = self.pause_for(identity)
        return {
            "requests_today": {
                "used": usage.requests,
                "limit": limits.requests_per_day,
                "remaining": remaining(
                    limits.requests_per_day, usage.requests + usage.reserved_requests
                ),
                "resets_at": next_day.isoformat(),
            },
            "tokens_today": {
                "used": usage.tokens,
                "limit": limits.tokens_per_day,
                "remaining": remaining(limits.tokens_per_day, usage.tokens + usage.reserved_tokens),
                "resets_at": next_day.isoformat(),
            },
            "budget_month": {
                "spent_usd": usage.micro_usd / 1e6,
                "limit_usd": None
                if limits.micro_usd_per_month is None
                else limits.micro_usd_per_month / 1e6,
                "remaining_usd": None
                if limits.micro_usd_per_month is None
                else max(0, limits.micro_usd_per_month - spent) / 1e6,
                "resets_at": next_month.isoformat(),
            },
            "concurrent": {"running": usage.running, "limit": limits.concurrent_requests},
            "overridden": limits.overridden,
            "paused": None
            if pause is None
            else {
                "by": pause["paused_by"],
                "reason": pause.get("reason"),
                "whole_class": pause["user"] is None,
            },
        }

    # -- teacher and admin actions ------------------------------------------------------

    async def pause(
        self, tenant: str, user: str | None, by: str, reason: str | None
    ) -> dict[str, Any]:
        assert self.history is not None
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
        assert self.history is not None
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
        assert self.history is not None
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
        assert self.history is not None

        def write(conn: Connection) -> None:
            conn.execute(delete(quota_overrides).where(quota_overrides.c.user == user))

        await self.history.write(write)
        return self._overrides.pop(user, None) is not None

    def overrides_of(self, tenant: str | None) -> list[dict[str, Any]]:
        return [o for o in self._overrides.values() if tenant is None or o["tenant"] == tenant]


def chat_estimate(model: ModelInfo, prompt_tokens: int, max_output: int | None) -> CallEstimate:
    """The worst case of a chat call: the prompt, plus every token it may write."""
    output = max_output or model.max_output_tokens or 4096
    if not model.priced:
        return CallEstimate(prompt_tokens, output, None)
    prices = model.prices
    from decimal import ROUND_CEILING, Decimal

    total = prompt_tokens * prices.get("input_per_mtok", Decimal(0)) + output * max(
        prices.get("output_per_mtok", Decimal(0)), prices.get("reasoning_per_mtok", Decimal(0))
    )
    return CallEstimate(prompt_tokens, output, int(total.to_integral_value(rounding=ROUND_CEILING)))


class Admitted:
    """One admitted call (a plain class, not a generator: this is on every call's path)."""

    __slots__ = ("admission", "estimate", "identity", "loadtest", "ticket", "usage", "worst")

    def __init__(self, admission: Admission, identity: Identity, estimate: CallEstimate) -> None:
        self.admission = admission
        self.identity = identity
        self.estimate = estimate

    async def __aenter__(self) -> Ticket:
        admission, identity, estimate = self.admission, self.identity, self.estimate
        usage = await admission._user_usage(identity)
        usage.roll(*_periods(admission.clock())[:2])
        # From here to the reservation there is no await: check-and-reserve is atomic.
        admission._check(identity, usage, admission.limits_for(identity), estimate)
        self.usage = usage
        self.worst = worst = estimate.worst_case_micro_usd or 0
        usage.reserved_requests += 1
        usage.reserved_tokens += estimate.tokens
        usage.reserved_micro_usd += worst
        usage.running += 1
        admission.running_total += 1
        self.loadtest = loadtest = identity.kind == "loadtest"
        admission.running_loadtest += loadtest
        self.ticket = Ticket()
        return self.ticket

    async def __aexit__(self, *exc_info: object) -> None:
        usage, estimate, ticket, admission = self.usage, self.estimate, self.ticket, self.admission
        usage.reserved_requests -= 1
        usage.reserved_tokens -= estimate.tokens
        usage.reserved_micro_usd -= self.worst
        usage.running -= 1
        admission.running_total -= 1
        admission.running_loadtest -= self.loadtest
        if ticket.settled:
            usage.requests += 1
            usage.tokens += ticket.tokens
            usage.micro_usd += ticket.cost_micro_usd or 0
