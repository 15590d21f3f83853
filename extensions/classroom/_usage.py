"""Your own usage: today's and this month's requests, tokens and cost, and the limits.

The gateway's ``GET /api/usage/me`` answers this directly. A gateway without
it still has your history (``GET /api/history``), so the same numbers are
added up from there, and the limits come from the ``quota`` part of
``GET /api/me``. Days and months are counted in UTC, like the gateway's quotas.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._exceptions import GatewayError

if TYPE_CHECKING:
    from ._client import GatewayClient

HISTORY_PAGE = 500
#: At most this many history pages are read to add up a month (a safety net).
HISTORY_PAGES = 40
LIMIT_KEYS = ("requests_per_day", "tokens_per_day", "usd_per_month")


def my_usage(client: GatewayClient) -> dict[str, Any]:
    """``{"source", "today", "month", "limits", "recent"}`` for the caller."""
    try:
        body = client.get("/api/usage/me")
    except GatewayError as error:
        if error.code != "not_found":
            raise
        return usage_from_history(client)
    usage = normalize_usage(body)
    if not usage["recent"]:
        usage["recent"] = client.history(limit=10)["items"]
    return usage


def _period(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, Mapping) else {}
    tokens = data.get("tokens", data.get("total_tokens"))
    if tokens is None:
        tokens = int(data.get("prompt_tokens") or 0) + int(data.get("completion_tokens") or 0)
    cost = data.get("cost_usd")
    if cost is None and data.get("cost_micro_usd") is not None:
        cost = data["cost_micro_usd"] / 1_000_000
    return {
        "requests": int(data.get("requests", data.get("calls", 0)) or 0),
        "tokens": int(tokens or 0),
        "cost_usd": float(cost or 0.0),
    }


def normalize_usage(body: Mapping[str, Any]) -> dict[str, Any]:
    """The gateway's usage document in the shape the widget and lessons use."""
    limits: dict[str, Any] = {key: None for key in LIMIT_KEYS}
    status = body.get("limits")
    # The admission status (with per-student overrides) wins over the school's plain quota.
    limits_in = status if isinstance(status, Mapping) and "requests_today" not in status \
        else body.get("quota") or body.get("quotas") or {}
    if isinstance(status, Mapping) and "requests_today" in status:
        limits = limits_from_quota(status)
    elif isinstance(limits_in, Mapping):
        for key in LIMIT_KEYS:
            value = limits_in.get(key)
            if isinstance(value, Mapping):  # {"limit": n, "used": m}
                value = value.get("limit")
            limits[key] = value
    recent = body.get("recent") or body.get("recent_calls") or []
    return {
        "source": "/api/usage/me",
        "today": _period(body.get("today") or body.get("day")),
        "month": _period(body.get("month") or body.get("this_month")),
        "limits": limits,
        "recent": list(recent),
    }


def usage_from_history(client: GatewayClient, now: datetime | None = None) -> dict[str, Any]:
    """The same numbers added up from your history, newest first, back to the 1st."""
    now = now or datetime.now(UTC)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    today = {"requests": 0, "tokens": 0, "cost_usd": 0.0}
    month = {"requests": 0, "tokens": 0, "cost_usd": 0.0}
    recent: list[dict[str, Any]] = []
    offset = 0
    for _ in range(HISTORY_PAGES):
        page = client.history(limit=HISTORY_PAGE, offset=offset)
        items = page.get("items") or []
        recent.extend(items[: max(0, 10 - len(recent))])
        older = False
        for run in items:
            when = _parse_time(run.get("queued_at") or run.get("started_at"))
            if when is None or when < month_start:
                older = True
                break
            tokens = int(run.get("prompt_tokens") or 0) + int(run.get("completion_tokens") or 0)
            cost = float(run.get("cost_usd") or 0.0)
            for bucket, applies in ((month, True), (today, when >= day_start)):
                if applies:
                    bucket["requests"] += 1
                    bucket["tokens"] += tokens
                    bucket["cost_usd"] += cost
        offset += len(items)
        if older or len(items) < HISTORY_PAGE or offset >= int(page.get("total") or 0):
            break
    limits: dict[str, Any] = {key: None for key in LIMIT_KEYS}
    try:
        quota = client.me().get("quota")
    except GatewayError:
        quota = None
    if isinstance(quota, Mapping):
        limits = limits_from_quota(quota)
    return {
        "source": "/api/history",
        "today": today,
        "month": month,
        "limits": limits,
        "recent": recent,
    }


def limits_from_quota(quota: Mapping[str, Any]) -> dict[str, Any]:
    """The limits in the ``quota`` part of ``/api/me`` (None: no limit)."""

    def get(section: str, key: str) -> Any:
        part = quota.get(section)
        return part.get(key) if isinstance(part, Mapping) else None

    return {
        "requests_per_day": get("requests_today", "limit"),
        "tokens_per_day": get("tokens_today", "limit"),
        "usd_per_month": get("budget_month", "limit_usd"),
    }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
