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

The parts: the estimates and limits (:mod:`gateway.policy.limits`), the counters
(:mod:`gateway.policy.spend`), the checks (:mod:`gateway.policy.quota`), the pauses
and overrides (:mod:`gateway.policy.controls`); this module keeps the counters and
admits calls.

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
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from gateway.auth import Identity
from gateway.config.tenants import Tenant
from gateway.errors import QueueTimeout
from gateway.history.models import audit_log, runs
from gateway.history.store import HistoryStore
from gateway.policy.controls import FOLLOW_SECONDS, PAUSABLE_ROLES, Controls
from gateway.policy.limits import CallEstimate, Limits, _periods, chat_estimate, usd
from gateway.policy.quota import QuotaChecks
from gateway.policy.spend import QuotaUsage, SchoolSpend, Ticket
from gateway.pricing import ModelInfo

__all__ = [
    "PAUSABLE_ROLES", "Admission", "Admitted", "CallEstimate", "Limits", "SchoolSpend", "Ticket",
    "QuotaUsage", "chat_estimate", "usd",
]
log = logging.getLogger("gateway.admission")


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
        self._usage: dict[str, QuotaUsage] = {}
        self._schools: dict[str, SchoolSpend] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self.controls = Controls(history)
        self.quotas = QuotaChecks(self.tenants, self.controls, global_concurrency)
        self._background: set[asyncio.Task[Any]] = set()


    # -- state from the database -------------------------------------------------

    async def load(self) -> None:
        """Overrides and pauses from the database (at start); on a server database, which
        replicas share, followed for the gateway's lifetime."""
        await self.controls.load()
        if self.history is not None and self.history.engine.dialect.name != "sqlite":
            task = asyncio.get_running_loop().create_task(self.controls.follow(FOLLOW_SECONDS))
            self._background.add(task)

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

    async def _user_usage(self, identity: Identity) -> QuotaUsage:
        usage = self._usage.get(identity.name)
        if usage is not None:
            usage.roll(*_periods(self.clock())[:2])
            return usage

        async def read() -> QuotaUsage:
            usage = await self._read_usage(identity.name, self.clock())
            self._usage[identity.name] = usage
            return usage

        found: QuotaUsage = await self._once("user:" + identity.name, read)
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

    async def _read_usage(self, user: str, now: datetime) -> QuotaUsage:
        day, month, _, _ = _periods(now)
        usage = QuotaUsage(day=day, month=month)
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


    # -- limits (gateway.policy.quota) ------------------------------------------------

    def limits_for(self, identity: Identity) -> Limits:
        return self.quotas.limits_for(identity)

    def dollar_limits(self, identity: Identity, model: str, limits: Limits | None = None,
                      priced_as: str | None = None) -> list[str]:
        """Which dollar limits hold a call of ``model`` by this caller (empty: none)."""
        return self.quotas.dollar_limits(identity, model, limits, priced_as)

    def check_priced(self, identity: Identity, model: ModelInfo,
                     limits: Limits | None = None) -> None:
        """An unpriced model is refused to a caller that any dollar limit holds."""
        self.quotas.check_priced(identity, model, limits)

    def pause_for(self, identity: Identity) -> dict[str, Any] | None:
        return self.controls.pause_for(identity)

    # -- admission ------------------------------------------------------------------

    def _check(
        self, identity: Identity, usage: QuotaUsage, school: SchoolSpend, limits: Limits,
        model: ModelInfo, estimate: CallEstimate,
    ) -> None:
        busy = None
        if self.global_concurrency is not None:
            # Load tests count against the cap, but never take a student's place under it.
            busy = self.running_total if identity.kind == "loadtest" else (
                self.running_total - self.running_loadtest
            )
        self.quotas.check(identity, usage, school, limits, model, estimate, self.clock(), busy)

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

    async def _wait_turn(self, usage: QuotaUsage, limit: int) -> None:
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


    # -- teacher and admin actions (gateway.policy.controls) ----------------------------

    async def pause(
        self, tenant: str, user: str | None, by: str, reason: str | None
    ) -> dict[str, Any]:
        return await self.controls.pause(tenant, user, by, reason)

    async def resume(self, pause_id: int) -> dict[str, Any] | None:
        return await self.controls.resume(pause_id)

    def pauses_of(self, tenant: str | None) -> list[dict[str, Any]]:
        return self.controls.pauses_of(tenant)

    async def set_override(
        self, user: str, tenant: str, by: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.controls.set_override(user, tenant, by, values)

    async def clear_override(self, user: str) -> bool:
        return await self.controls.clear_override(user)

    def overrides_of(self, tenant: str | None) -> list[dict[str, Any]]:
        return self.controls.overrides_of(tenant)


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
