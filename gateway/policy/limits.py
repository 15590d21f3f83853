"""What a call may cost and what a caller may spend: estimates, limits, periods.

Plain values and small helpers shared by the quota checks (:mod:`gateway.policy.quota`),
the counters (:mod:`gateway.policy.spend`) and admission (:mod:`gateway.policy.admission`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal
from functools import lru_cache

from gateway.pricing import ModelInfo


@dataclass(frozen=True)
class CallEstimate:
    prompt_tokens: int = 0
    max_output_tokens: int = 0
    worst_case_micro_usd: int | None = None  # None: unpriced (only request/token limits apply)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_output_tokens



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


def chat_estimate(model: ModelInfo, prompt_tokens: int, max_output: int | None) -> CallEstimate:
    """The worst case of a chat call: the prompt, plus every token it may write."""
    output = max_output or model.max_output_tokens or 4096
    if not model.priced:
        return CallEstimate(prompt_tokens, output, None)
    prices = model.prices
    total = prompt_tokens * prices.get("input_per_mtok", Decimal(0)) + output * max(
        prices.get("output_per_mtok", Decimal(0)), prices.get("reasoning_per_mtok", Decimal(0))
    )
    return CallEstimate(prompt_tokens, output, int(total.to_integral_value(rounding=ROUND_CEILING)))

