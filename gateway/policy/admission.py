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
by admins (``quota_overrides``), and from the school itself: a monthly budget of
the whole school (``budget_usd_per_month``, with an alert level) and monthly caps
per model (``model_budgets_usd_per_month``). Every call of a school's users is
reserved against all of them at once. Counters start from the history (so a
restart does not reset anyone's day or month) and are then kept in memory.

What can never be served now (a daily or monthly limit, a pause) is refused at
once. A user's calls over their ``concurrent_requests`` wait for one of their own
calls to finish, in order, up to ``queue_max_wait`` (then ``queue_timeout``): a
loop that sends sixteen calls at once gets sixteen answers, four at a time, and
takes nobody else's place (the key pool's queue is fair across users).

An unpriced model (no price for what it bills, see :mod:`gateway.pricing`) is
refused with ``model_unpriced`` to every caller who has a dollar limit of any of
these kinds, so "unpriced" is never a way round a budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.errors import (
    BudgetExceeded,
    ModelUnpriced,
    PausedByTeacher,
    QueueTimeout,
    QuotaExceeded,
    RateLimited,
)
from gateway.history.models import audit_log, pauses, quota_overrides, runs
from gateway.history.store import HistoryStore
from gateway.pricing import ModelInfo
from gateway.tenants import RoleQuota, Tenant, _allows

PAUSABLE_ROLES = {"student", "viewer"}
log = logging.getLogger("gateway.admission")


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
    # Calls waiting for one of this user's own running calls to finish, oldest first.
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)

    def roll(self, day: str, month: str) -> None:
        if day != self.day:
            self.day, self.requests, self.tokens = day, 0, 0
        if month != self.month:
            self.month, self.micro_usd = month, 0

    def release_slot(self) -> None:
        """A running call ends: its slot goes to the oldest waiting call, if any."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot is handed over: ``running`` stays
                return
        self.running -= 1


@dataclass
class SchoolSpend:
    """A school's spend this month, in total and per model: settled plus reserved."""

    month: str
    micro_usd: int = 0
    reserved_micro_usd: int = 0
    # Keyed by (the name called, the catalog model charged): a cap on ``gpt-4.1`` holds its
    # dated snapshots too, and a cap on one snapshot holds only it.
    by_model: dict[tuple[str, str], int] = field(default_factory=dict)
    reserved_by_model: dict[tuple[str, str], int] = field(default_factory=dict)
    alerted: bool = False  # the budget.alert audit entry of this month is written

    def roll(self, month: str) -> None:
        if month != self.month:
            self.month, self.micro_usd, self.alerted = month, 0, False
            self.by_model, self.reserved_by_model = {}, {}

    def of_pattern(self, pattern: str) -> tuple[int, int]:
        """Settled and reserved spend of the models a pattern matches."""
        def total(values: dict[tuple[str, str], int]) -> int:
            return sum(v for (called, charged), v in values.items()
                       if _allows((pattern,), called) or _allows((pattern,), charged))
        return total(self.by_model), total(self.reserved_by_model)


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
        queue_max_wait: float = 120.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.history = history
        self.tenants = tenants or {}
        self.global_concurrency = global_concurrency
        self.queue_max_wait = queue_max_wait
        self.clock = clock or (lambda: datetime.now(UTC))
        self.running_total = 0
        self.running_loadtest = 0
        self._usage: dict[str, Usage] = {}
        self._schools: dict[str, SchoolSpend] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self._overrides: dict[str, dict[str, Any]] = {}
        self._pauses: list[dict[str, Any]] = []
        self._background: set[asyncio.Task[Any]] = set()

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

    async def _once(self, key: str, read: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """``read()`` once for concurrent callers asking for the same ``key``."""
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await read()
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._loading.pop(key, None)

    async def _user_usage(self, identity: Identity) -> Usage:
        usage = self._usage.get(identity.name)
        if usage is not None:
            usage.roll(*_periods(self.clock())[:2])
            return usage

        async def read() -> Usage:
            usage = await self._read_usage(identity.name, self.clock())
            self._usage[identity.name] = usage
            return usage

        found: Usage = await self._once("user:" + identity.name, read)
        return found

    async def _school_spend(self, tenant: str) -> SchoolSpend:
        spend = self._schools.get(tenant)
        if spend is not None:
            spend.roll(_periods(self.clock())[1])
            return spend

        async def read() -> SchoolSpend:
            spend = await self._read_school(tenant, self.clock())
            self._schools[tenant] = spend
            return spend

        found: SchoolSpend = await self._once("tenant:" + tenant, read)
        return found

    async def _read_school(self, tenant: str, now: datetime) -> SchoolSpend:
        month = _periods(now)[1]
        spend = SchoolSpend(month=month)
        if self.history is None:
            return spend
        month_start = datetime.fromisoformat(month + "-01").replace(tzinfo=UTC).timestamp()

        def read(conn: Connection) -> tuple[dict[tuple[str, str], int], bool]:
            by_model: dict[tuple[str, str], int] = {}
            for model, priced_as, micro in conn.execute(
                select(runs.c.model, runs.c.priced_as,
                       func.coalesce(func.sum(runs.c.cost_micro_usd), 0))
                .where(runs.c.tenant == tenant, runs.c.queued_at >= month_start)
                .group_by(runs.c.model, runs.c.priced_as)
            ):
                key = (str(model), str(priced_as or model))
                by_model[key] = by_model.get(key, 0) + int(micro)
            alerted = conn.execute(
                select(func.count()).select_from(audit_log).where(
                    audit_log.c.tenant == tenant, audit_log.c.action == "budget.alert",
                    audit_log.c.at >= month_start)
            ).scalar_one()
            return by_model, bool(alerted)

        spend.by_model, spend.alerted = await self.history.read(read)
        spend.micro_usd = sum(spend.by_model.values())
        return spend

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

    def dollar_limits(self, identity: Identity, model: str, limits: Limits | None = None,
                      priced_as: str | None = None) -> list[str]:
        """Which dollar limits hold a call of ``model`` by this caller (empty: none)."""
        limits = limits or self.limits_for(identity)
        held = ["your monthly budget"] if limits.micro_usd_per_month is not None else []
        tenant = self.tenants.get(identity.tenant)
        if tenant is not None:
            if tenant.budget_usd_per_month is not None:
                held.append("your school's monthly budget")
            held += [f"your school's budget for {pattern}"
                     for pattern, _ in tenant.model_budgets_for(model, priced_as)]
        return held

    def check_priced(self, identity: Identity, model: ModelInfo,
                     limits: Limits | None = None) -> None:
        """An unpriced model is refused to a caller that any dollar limit holds."""
        if model.has_price:
            return
        self._refuse_unpriced(identity, model.id, limits)

    def _refuse_unpriced(self, identity: Identity, model: str, limits: Limits | None,
                         what: str = "") -> None:
        held = self.dollar_limits(identity, model, limits)
        if held:
            raise ModelUnpriced(
                f"The model '{model}'{what} has no price in this classroom, so its cost could "
                f"not be counted against {' and '.join(held)}. An administrator must give it a "
                "price first (CLASSROOM_PRICES_FILE). GET /v1/models lists the models you can "
                "use.",
                param="model",
            )

    def pause_for(self, identity: Identity) -> dict[str, Any] | None:
        if identity.role not in PAUSABLE_ROLES:
            return None
        for pause in self._pauses:
            if pause["tenant"] == identity.tenant and pause["user"] in (None, identity.name):
                return pause
        return None

    # -- admission ------------------------------------------------------------------

    def _check(
        self, identity: Identity, usage: Usage, school: SchoolSpend, limits: Limits,
        model: ModelInfo, estimate: CallEstimate,
    ) -> None:
        """Every limit but the user's concurrency (which waits): refuse what cannot be
        served now. No ``await`` here or between this and the reservation."""
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
        worst = estimate.worst_case_micro_usd
        if worst is None:
            # The model has a price, but not for this call (a size or mode the table lacks).
            self._refuse_unpriced(identity, model.id, limits, " (with these settings)")
            return
        if limits.micro_usd_per_month is not None:
            spent = usage.micro_usd + usage.reserved_micro_usd
            if spent + worst > limits.micro_usd_per_month:
                raise BudgetExceeded(
                    f"You have spent {usd(spent)} of your {usd(limits.micro_usd_per_month)} budget "
                    f"for this month, and this call could cost up to {usd(worst)}. "
                    f"The budget resets on {next_month:%d %B} (UTC); a cheaper model or a smaller "
                    "max_tokens may still fit.",
                    details={
                        "limit": "usd_per_month",
                        "spent_usd": spent / 1e6,
                        "max_usd": limits.micro_usd_per_month / 1e6,
                        "resets_at": next_month.isoformat(),
                    },
                )
        tenant = self.tenants.get(identity.tenant)
        if tenant is None:
            return
        if tenant.budget_usd_per_month is not None:
            limit = round(tenant.budget_usd_per_month * 1_000_000)
            spent = school.micro_usd + school.reserved_micro_usd
            if spent + worst > limit:
                raise BudgetExceeded(
                    f"Your school ({tenant.display_name}) has spent {usd(spent)} of its "
                    f"{usd(limit)} budget for this month, and this call could cost up to "
                    f"{usd(worst)}. The school budget resets on {next_month:%d %B} (UTC); tell "
                    "your teacher.",
                    details={
                        "limit": "school_usd_per_month",
                        "spent_usd": spent / 1e6,
                        "max_usd": limit / 1e6,
                        "resets_at": next_month.isoformat(),
                    },
                )
        for pattern, limit in tenant.model_budgets_for(model.id, model.priced_as):
            settled, reserved = school.of_pattern(pattern)
            if settled + reserved + worst > limit:
                raise BudgetExceeded(
                    f"Your school ({tenant.display_name}) has spent {usd(settled + reserved)} of "
                    f"its {usd(limit)} monthly budget for {pattern}, and this call could cost "
                    f"up to {usd(worst)}. Choose another model; the budget resets on "
                    f"{next_month:%d %B} (UTC).",
                    param="model",
                    details={
                        "limit": "model_usd_per_month",
                        "model": pattern,
                        "spent_usd": (settled + reserved) / 1e6,
                        "max_usd": limit / 1e6,
                        "resets_at": next_month.isoformat(),
                    },
                )

    def admit(self, identity: Identity, model: ModelInfo, estimate: CallEstimate) -> Admitted:
        """``async with admission.admit(...) as ticket``: checked and reserved on entry,
        released (and settled, if the ticket was) on exit. A call over the user's
        concurrency waits here for one of the user's own calls to finish."""
        return Admitted(self, identity, model, estimate)

    async def precheck(self, identity: Identity, model: ModelInfo,
                       estimate: CallEstimate) -> None:
        """The checks of :meth:`admit` without reserving, for work that is admitted later
        (a job's call starts in the background): its caller hears a refusal at once."""
        usage = await self._user_usage(identity)
        school = await self._school_spend(identity.tenant)
        self._check(identity, usage, school, self.limits_for(identity), model, estimate)

    async def _wait_turn(self, usage: Usage, limit: int) -> None:
        """Wait, in order, for one of this user's own running calls to finish; the slot
        is handed over (``running`` already counts it) or ``queue_timeout`` is raised."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        usage.waiting.append(waiter)
        try:
            try:
                await asyncio.wait_for(asyncio.shield(waiter), self.queue_max_wait)
            except TimeoutError:
                raise QueueTimeout(
                    f"You already have {usage.running} calls running, your limit at once "
                    f"({limit}); this one waited {self.queue_max_wait:g} s for one of them to "
                    "finish, the longest a call may wait. Send fewer calls at once, or try "
                    "again.",
                    retry_after=1,
                    details={"limit": "concurrent_requests"},
                ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                usage.release_slot()  # handed over as we gave up: pass it on
            else:
                waiter.cancel()
                try:
                    usage.waiting.remove(waiter)
                except ValueError:
                    pass
            raise

    def _settled(self, identity: Identity, school: SchoolSpend, micro_usd: int) -> None:
        """After a settlement: the school's alert, once a month, when it crosses its level."""
        tenant = self.tenants.get(identity.tenant)
        if (micro_usd <= 0 or school.alerted or tenant is None
                or tenant.budget_usd_per_month is None or self.history is None):
            return
        limit = round(tenant.budget_usd_per_month * 1_000_000)
        if school.micro_usd * 100 < limit * tenant.budget_alert_percent:
            return
        school.alerted = True
        history = self.history
        details = {"spent_usd": school.micro_usd / 1e6, "budget_usd": limit / 1e6,
                   "alert_percent": tenant.budget_alert_percent, "month": school.month}
        log.warning("school %s has spent %s of its %s monthly budget", tenant.tenant_id,
                    usd(school.micro_usd), usd(limit))

        async def write() -> None:
            from gateway.history.audit import record_audit

            await record_audit(history, identity, "budget.alert", target=tenant.tenant_id,
                               tenant=tenant.tenant_id, details=details)

        task = asyncio.get_running_loop().create_task(write())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    def _school_entry(tenant: Tenant, school: SchoolSpend, resets: datetime) -> dict[str, Any]:
        assert tenant.budget_usd_per_month is not None
        limit = round(tenant.budget_usd_per_month * 1_000_000)
        spent, reserved = school.micro_usd, school.reserved_micro_usd
        return {
            "spent_usd": spent / 1e6, "reserved_usd": reserved / 1e6, "limit_usd": limit / 1e6,
            "remaining_usd": max(0, limit - spent - reserved) / 1e6,
            "resets_at": resets.isoformat(), "alert_percent": tenant.budget_alert_percent,
            "alert": spent * 100 >= limit * tenant.budget_alert_percent,
            "exhausted": spent + reserved >= limit,
        }

    async def school_budget(self, tenant_id: str) -> dict[str, Any] | None:
        """The school's own monthly budget now (None: it has none), for its teachers."""
        tenant = self.tenants.get(tenant_id)
        if tenant is None or tenant.budget_usd_per_month is None:
            return None
        school = await self._school_spend(tenant_id)
        return self._school_entry(tenant, school, _periods(self.clock())[3])

    async def status(self, identity: Identity) -> dict[str, Any]:
        """What ``GET /api/me`` shows: for each limit what is used, what calls in flight
        have reserved, what is left, and when it resets."""
        usage = await self._user_usage(identity)
        school = await self._school_spend(identity.tenant)
        limits = self.limits_for(identity)
        now = self.clock()
        _, _, next_day, next_month = _periods(now)

        def remaining(limit: int | None, used: int) -> int | None:
            return None if limit is None else max(0, limit - used)

        def dollars(spent: int, reserved: int, limit: int | None,
                    resets: datetime) -> dict[str, Any]:
            return {
                "spent_usd": spent / 1e6,
                "reserved_usd": reserved / 1e6,
                "limit_usd": None if limit is None else limit / 1e6,
                "remaining_usd": None if limit is None else max(0, limit - spent - reserved) / 1e6,
                "resets_at": resets.isoformat(),
            }

        pause = self.pause_for(identity)
        out: dict[str, Any] = {
            "requests_today": {
                "used": usage.requests,
                "reserved": usage.reserved_requests,
                "limit": limits.requests_per_day,
                "remaining": remaining(
                    limits.requests_per_day, usage.requests + usage.reserved_requests
                ),
                "resets_at": next_day.isoformat(),
            },
            "tokens_today": {
                "used": usage.tokens,
                "reserved": usage.reserved_tokens,
                "limit": limits.tokens_per_day,
                "remaining": remaining(limits.tokens_per_day, usage.tokens + usage.reserved_tokens),
                "resets_at": next_day.isoformat(),
            },
            "budget_month": dollars(usage.micro_usd, usage.reserved_micro_usd,
                                    limits.micro_usd_per_month, next_month),
            "concurrent": {"running": usage.running, "waiting": len(usage.waiting),
                           "limit": limits.concurrent_requests},
            "overridden": limits.overridden,
            "paused": None
            if pause is None
            else {
                "by": pause["paused_by"],
                "reason": pause.get("reason"),
                "whole_class": pause["user"] is None,
            },
            "school_budget": None,
            "model_budgets": [],
        }
        tenant = self.tenants.get(identity.tenant)
        if tenant is not None and tenant.budget_usd_per_month is not None:
            entry = self._school_entry(tenant, school, next_month)
            if not identity.can_teach(identity.tenant):
                # A student learns whether the school's budget stops them, not its figures.
                entry = {"exhausted": entry["exhausted"], "resets_at": entry["resets_at"]}
            out["school_budget"] = entry
        if tenant is not None:
            for pattern, usd_limit in tenant.model_budgets_usd_per_month.items():
                settled, reserved = school.of_pattern(pattern)
                out["model_budgets"].append({"model": pattern, **dollars(
                    settled, reserved, round(usd_limit * 1_000_000), next_month)})
        return out

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

    __slots__ = ("admission", "estimate", "identity", "key", "loadtest", "model", "school",
                 "ticket", "usage", "worst")

    def __init__(self, admission: Admission, identity: Identity, model: ModelInfo,
                 estimate: CallEstimate) -> None:
        self.admission = admission
        self.identity = identity
        self.model = model
        self.estimate = estimate

    async def __aenter__(self) -> Ticket:
        admission, identity, estimate = self.admission, self.identity, self.estimate
        usage = await admission._user_usage(identity)
        school = await admission._school_spend(identity.tenant)
        limits = admission.limits_for(identity)
        admission._check(identity, usage, school, limits, self.model, estimate)
        cap = limits.concurrent_requests
        if cap is not None and (usage.running >= cap or usage.waiting):
            await admission._wait_turn(usage, cap)  # the slot is ours on return
            try:
                # Time has passed: check again (a budget may be used up meanwhile).
                usage.roll(*_periods(admission.clock())[:2])
                school.roll(usage.month)
                admission._check(identity, usage, school, admission.limits_for(identity),
                                 self.model, estimate)
            except BaseException:
                usage.release_slot()
                raise
        else:
            usage.running += 1
        # From the last check to here there is no await: check-and-reserve is atomic.
        self.usage, self.school = usage, school
        self.worst = worst = estimate.worst_case_micro_usd or 0
        usage.reserved_requests += 1
        usage.reserved_tokens += estimate.tokens
        usage.reserved_micro_usd += worst
        school.reserved_micro_usd += worst
        self.key = key = (self.model.id, self.model.priced_as or self.model.id)
        school.reserved_by_model[key] = school.reserved_by_model.get(key, 0) + worst
        admission.running_total += 1
        self.loadtest = loadtest = identity.kind == "loadtest"
        admission.running_loadtest += loadtest
        self.ticket = Ticket()
        return self.ticket

    async def __aexit__(self, *exc_info: object) -> None:
        usage, estimate, ticket, admission = self.usage, self.estimate, self.ticket, self.admission
        school, worst, key = self.school, self.worst, self.key
        usage.reserved_requests -= 1
        usage.reserved_tokens -= estimate.tokens
        usage.reserved_micro_usd -= worst
        school.reserved_micro_usd -= worst
        school.reserved_by_model[key] -= worst
        usage.release_slot()
        admission.running_total -= 1
        admission.running_loadtest -= self.loadtest
        if ticket.settled:
            usage.requests += 1
            usage.tokens += ticket.tokens
            cost = ticket.cost_micro_usd or 0
            usage.micro_usd += cost
            school.micro_usd += cost
            school.by_model[key] = school.by_model.get(key, 0) + cost
            admission._settled(self.identity, school, cost)
