"""Your own usage: today's and this month's requests, tokens and cost, and the limits.

The gateway's ``GET /api/usage/me`` answers this; this module reads its answer
into the shape the widget and the lessons use (``client.my_usage()`` asks).
Days and months are counted in UTC, like the gateway's quotas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LIMIT_KEYS = ("requests_per_day", "tokens_per_day", "usd_per_month")


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
