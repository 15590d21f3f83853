"""Fifty calls racing for the last cent through a mix of doors never overshoot a budget.

A real gateway (uvicorn) with keys pointing at the fake vendors; the students' calls
go through the OpenAI-compatible face (to OpenAI), the Anthropic face and the Google
face at once. What was really charged is reconstructed from the fake vendors' own
request logs (each request's scripted usage at the catalog's price), not from the
gateway's counters, and must stay within the personal budget, the school's budget,
or the school's cap for one model.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.pricing import Catalog, TokenUsage, token_cost
from tests.conftest import REPO, TOKENS
from tests.gateway.providers.conftest import FAST, keys_toml

USAGE = "[[usage prompt=12 completion=20]]"
DOORS = [  # (vendor that serves it, model, path, body)
    ("openai", "gpt-4o-mini", "/v1/chat/completions",
     {"model": "gpt-4o-mini", "max_tokens": 40, "messages": [{"role": "user",
                                                              "content": f"race {USAGE}"}]}),
    ("anthropic", "claude-haiku-4-5", "/anthropic/v1/messages",
     {"model": "claude-haiku-4-5", "max_tokens": 40,
      "messages": [{"role": "user", "content": f"race {USAGE}"}]}),
    ("google", "gemini-2.5-flash-lite",
     "/google/v1beta/models/gemini-2.5-flash-lite:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": f"race {USAGE}"}]}],
      "generationConfig": {"maxOutputTokens": 40}}),
]
CATALOG = Catalog.load()


def real_cost(model: str) -> int:
    cost = token_cost(CATALOG.get(model), TokenUsage(prompt_tokens=12, completion_tokens=20))
    assert cost.micro_usd is not None
    return cost.micro_usd


def tenants_with(tmp_path: Path, **school_a: Any) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "logos").symlink_to(REPO / "tenants" / "logos")
    for path in (REPO / "tenants").glob("*.json"):
        data = json.loads(path.read_text())
        if data["tenant_id"] == "school_a":
            data.update(school_a)
        (folder / path.name).write_text(json.dumps(data))
    return folder


async def race(url: str, tokens: list[str], calls: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def one(i: int) -> httpx.Response:
            _, _, path, body = DOORS[i % len(DOORS)]
            token = tokens[i % len(tokens)]
            return await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})

        return await asyncio.gather(*(one(i) for i in range(calls)))


CASES = {
    # name → (school_a settings, override of stu_a's own budget (US$), tokens racing)
    "personal": ({}, 0.0004, ["student_a"]),
    "school": ({"budget_usd_per_month": 0.0006, "budget_alert_percent": 25}, None,
               ["student_a", "student_a2", "teacher_a"]),
    "model-cap": ({"model_budgets_usd_per_month": {"claude-*": 0.0003, "gemini-*": 0.00005}},
                  None, ["student_a", "student_a2"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fifty_calls_racing_through_every_face_never_overshoot(
        case: str, start_gateway: Any, fakes: Any, tmp_path: Path) -> None:
    school_a, personal, who = CASES[case]
    keys = tmp_path / "keys.toml"
    keys.write_text(keys_toml(fakes))
    gateway = start_gateway(CLASSROOM_KEYS_FILE=str(keys),
                            CLASSROOM_TENANTS_DIR=str(tenants_with(tmp_path, **school_a)), **FAST)
    admin = {"Authorization": f"Bearer {TOKENS['admin'][0]}"}
    if personal is not None:
        response = httpx.put(f"{gateway.url}/api/overrides/stu_a", headers=admin,
                             json={"tenant": "school_a", "usd_per_month": personal})
        assert response.status_code == 200, response.text
    responses = asyncio.run(race(gateway.url, [TOKENS[w][0] for w in who], 50))

    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert served and refused, [r.status_code for r in responses]
    for response in refused:
        assert response.status_code == 429, response.text
        assert "budget_exceeded" in response.text or "BUDGET_EXCEEDED" in response.text
    # What the vendors really served, and what it cost at the catalog's prices.
    by_vendor = {vendor: len(fakes.requests(vendor)) for vendor, *_ in DOORS}
    assert sum(by_vendor.values()) == len(served)
    charged = {model: by_vendor[vendor] * real_cost(model) for vendor, model, *_ in DOORS}
    if case == "personal":
        assert sum(charged.values()) <= personal * 1_000_000
    elif case == "school":
        assert sum(charged.values()) <= school_a["budget_usd_per_month"] * 1_000_000
    else:
        caps = school_a["model_budgets_usd_per_month"]
        assert charged["claude-haiku-4-5"] <= caps["claude-*"] * 1_000_000
        assert charged["gemini-2.5-flash-lite"] <= caps["gemini-*"] * 1_000_000
        assert by_vendor["openai"] == len([i for i in range(50) if i % 3 == 0])  # no cap
    # The history agrees with the vendors: every served call charged, at its real price.
    runs = httpx.get(f"{gateway.url}/api/runs", headers=admin,
                     params={"tenant": "school_a", "limit": 100}).json()["items"]
    ok = [r for r in runs if r["status"] == "ok"]
    assert len(ok) == len(served)
    assert sum(r["cost_micro_usd"] for r in ok) == sum(charged.values())
    assert all(r["error_code"] == "budget_exceeded" for r in runs if r["status"] == "error")
    me = httpx.get(f"{gateway.url}/api/me", headers={
        "Authorization": f"Bearer {TOKENS['teacher_a'][0]}"}).json()["quota"]
    if case == "school":
        school = me["school_budget"]
        assert school["reserved_usd"] == 0 and school["limit_usd"] == 0.0006
        assert Decimal(str(school["spent_usd"])) == Decimal(sum(charged.values())) / 10**6
        assert school["alert"] is True  # past 80 % of the budget
        audit = httpx.get(f"{gateway.url}/api/audit", headers=admin,
                          params={"action": "budget.alert"}).json()["items"]
        assert [a["target"] for a in audit] == ["school_a"]  # once, however many calls
        # The teachers' live dashboard shows the alert as a banner.
        from classroom import GatewayClient
        from classroom.widgets.live import ClassActivity

        live = ClassActivity(client=GatewayClient(gateway.url, TOKENS["teacher_a"][0]))
        assert live.last["activity"]["budget"]["school"]["alert"] is True
        assert "School budget alert:" in live.alert.value and "25 % alert level" in (
            live.alert.value)
    if case == "model-cap":
        caps = {b["model"]: b for b in me["model_budgets"]}
        claude = caps["claude-*"]
        assert round(claude["spent_usd"] * 1e6) == charged["claude-haiku-4-5"]
        assert claude["reserved_usd"] == 0  # nothing in flight, nothing leaked
        assert round((claude["spent_usd"] + claude["remaining_usd"]) * 1e6) == 300
