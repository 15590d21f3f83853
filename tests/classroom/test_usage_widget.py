"""My usage: today's and this month's numbers against the limits, and recent calls."""

from __future__ import annotations

import httpx
import pytest
from classroom import GatewayClient, MyUsage
from classroom._exceptions import GatewayError
from classroom._usage import normalize_usage


def test_my_usage_counts_my_calls_against_my_limits(make_client):
    client = make_client("student_b")
    before = MyUsage(client=client, load=False).refresh()
    client.chat("count me", model="mock/echo")
    client.chat("and me", model="mock/echo")
    usage = MyUsage(client=client, load=False)
    after = usage.refresh()
    assert after["today"]["requests"] == before["today"]["requests"] + 2
    assert after["month"]["tokens"] > before["month"]["tokens"]
    assert after["limits"]["requests_per_day"] == 500  # the school's student quota
    bars = usage.bars()
    assert [b["label"] for b in bars] == ["Requests today", "Tokens today",
                                          "Cost this month (USD)"]
    assert bars[0]["share"] == after["today"]["requests"] / 500
    assert list(usage.chart.figure.data[0].y) == [b["label"] for b in bars]
    assert "of 500" in usage.chart.figure.data[0].text[0]
    assert "and me" not in usage.recent.value  # the table shows models, not prompts
    assert "mock/echo" in usage.recent.value and "Recent calls" in usage.recent.value
    assert "Today:" in usage.summary.value


def test_the_widget_loads_by_itself(make_client):
    usage = MyUsage(client=make_client())
    assert usage.wait(30) and usage.usage is not None and usage.last_error is None


def test_my_usage_asks_the_gateways_usage_report_and_nothing_else():
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    client = GatewayClient("http://g.test", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(GatewayError) as raised:
        client.my_usage()
    assert raised.value.code == "not_found" and asked == ["/api/usage/me"]


def test_a_usage_report_is_read_whatever_its_exact_shape():
    usage = normalize_usage({"today": {"requests": 3, "prompt_tokens": 10,
                                       "completion_tokens": 2, "cost_micro_usd": 1500},
                             "month": {"requests": 9, "tokens": 40, "cost_usd": 0.01},
                             "limits": {"requests_per_day": {"limit": 50, "used": 3}}})
    assert usage["today"] == {"requests": 3, "tokens": 12, "cost_usd": 0.0015}
    assert usage["limits"]["requests_per_day"] == 50


def test_the_gateways_usage_report_with_its_admission_status_is_read():
    usage = normalize_usage({
        "today": {"requests": 2, "total_tokens": 30, "cost_usd": 0.0},
        "month": {"requests": 5, "total_tokens": 90, "cost_usd": 0.25},
        "quota": {"requests_per_day": 500, "tokens_per_day": 200000, "usd_per_month": 5.0},
        "limits": {"requests_today": {"used": 2, "limit": 20},
                   "tokens_today": {"used": 30, "limit": 1000},
                   "budget_month": {"spent_usd": 0.25, "limit_usd": 1.0}},
    })
    assert usage["today"]["tokens"] == 30 and usage["month"]["cost_usd"] == 0.25
    assert usage["limits"] == {"requests_per_day": 20, "tokens_per_day": 1000,
                               "usd_per_month": 1.0}
