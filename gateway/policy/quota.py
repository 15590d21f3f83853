"""The quota checks: may this call be served now, by every limit that holds it?

A caller's limits come from the school's file per role (``quotas``), overridden per
user by admins (:mod:`gateway.policy.controls`), and from the school itself: a monthly
budget of the whole school and monthly caps per model. :meth:`QuotaChecks.check`
refuses, with words a student understands, what cannot be served now; admission calls
it with no ``await`` between the check and the reservation. Plain Python.
"""

from __future__ import annotations

from datetime import datetime

from gateway.auth import Identity
from gateway.config.tenants import RoleQuota, Tenant
from gateway.errors import (
    BudgetExceeded,
    ModelUnpriced,
    PausedByTeacher,
    QuotaExceeded,
    RateLimited,
)
from gateway.policy.controls import Controls
from gateway.policy.limits import CallEstimate, Limits, _in, _periods, usd
from gateway.policy.spend import QuotaUsage, SchoolSpend
from gateway.pricing import ModelInfo


class QuotaChecks:
    def __init__(self, tenants: dict[str, Tenant], controls: Controls,
                 global_concurrency: int | None = None) -> None:
        self.tenants = tenants
        self.controls = controls
        self.global_concurrency = global_concurrency

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
        override = self.controls.override_for(identity.name)
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

    def check(
        self, identity: Identity, usage: QuotaUsage, school: SchoolSpend, limits: Limits,
        model: ModelInfo, estimate: CallEstimate, now: datetime, busy: int | None,
    ) -> None:
        """Every limit but the user's concurrency (which waits): refuse what cannot be
        served now. ``busy``: the calls running that count against the classroom's cap
        (None: no cap). No ``await`` here or between this and the reservation."""
        _, _, next_day, next_month = _periods(now)
        pause = self.controls.pause_for(identity)
        if pause is not None:
            whom = "you" if pause["user"] else "your whole class"
            raise PausedByTeacher(
                f"Your teacher ({pause['paused_by']}) has paused AI calls for {whom}"
                + (f": {pause['reason']}" if pause.get("reason") else ".")
                + " Wait until they resume them."
            )
        if self.global_concurrency is not None and busy is not None:
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
