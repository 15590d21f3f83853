"""Feature flags and dollar limits hold at every door of the gateway.

Each door (the OpenAI-compatible ``/v1/*``, the Anthropic and Google native faces,
media, ``/api/jobs``, widget calls, load tests) is attacked as a curious student
would: with a feature the school has switched off, with model names the price
table does not know (dated snapshots, made-up family members, other scripts,
HTML), and with fifty calls racing for the last cent. Refusals are checked from
the body (a stable code, words) and the history row every refused call leaves.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.settings import Settings
from gateway.config.tenants import FEATURES
from gateway.edge.app import create_asgi
from gateway.pricing import Catalog
from tests.conftest import REPO

CATALOG = Catalog.load()  # the shipped table, as the gateway under test reads it
MODELS = ["mock/*", "gpt-4.1*", "gpt-4o-mini", "claude-*", "gemini-*"]
SCHOOLS = {
    # school id → enabled_features
    "nothing": ["usage"],
    "playonly": ["playground"],
    "compareonly": ["compare"],
    "everything": list(FEATURES),
}


def school(tenant_id: str, features: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id, "display_name": f"<b>{tenant_id}</b> school",
        "branding": {"page_title": tenant_id, "browser_tab_title": tenant_id},
        "enabled_features": features, "models": MODELS,
        "quotas": {"student": {"usd_per_month": 0.0002, "concurrent_requests": 4},
                   "admin": {}},
        **extra,
    }


TOKENS = {f"tok-{t}": {"name": f"stu_{t}", "tenant": t, "role": "student"} for t in SCHOOLS}
TOKENS["tok-admin"] = {"name": "boss", "tenant": "everything", "role": "admin"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("doors")
    tenants = root / "tenants"
    tenants.mkdir()
    for tenant_id, features in SCHOOLS.items():
        (tenants / f"{tenant_id}.json").write_text(json.dumps(school(tenant_id, features)))
    tokens = root / "tokens.json"
    tokens.write_text(json.dumps({"tokens": TOKENS}))
    settings = Settings(data_dir=root / "data", auth_tokens_file=tokens, tenants_dir=tenants,
                        mock_ttft_ms=0, mock_tokens_per_second=0, mock_media_ms=0,
                        mock_job_seconds=0.05, job_poll_seconds=0.02, hub_api_url=None)
    with TestClient(create_asgi(settings)) as client:
        yield client


def bearer(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{tenant}"}


HI = [{"role": "user", "content": "hi"}]

# door → (feature it belongs to, how to knock)
Door = Callable[[TestClient, dict[str, str]], httpx.Response]
DOORS: dict[str, tuple[str, Door]] = {
    "openai-chat": ("chat", lambda c, h: c.post(
        "/v1/chat/completions", headers=h, json={"model": "mock/echo", "messages": HI})),
    "openai-chat-stream": ("chat", lambda c, h: c.post(
        "/v1/chat/completions", headers=h,
        json={"model": "mock/echo", "messages": HI, "stream": True})),
    "widget-chat": ("chat", lambda c, h: c.post(
        "/v1/chat/completions", headers={**h, "X-Classroom-Source": "widget"},
        json={"model": "mock/lorem", "messages": HI})),
    "anthropic-messages": ("chat", lambda c, h: c.post(
        "/anthropic/v1/messages", headers=h,
        json={"model": "mock/echo", "max_tokens": 50, "messages": HI})),
    "google-generate": ("chat", lambda c, h: c.post(
        "/google/v1beta/models/mock/echo:generateContent", headers=h,
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})),
    "openai-embeddings": ("embeddings", lambda c, h: c.post(
        "/v1/embeddings", headers=h, json={"model": "mock/embed", "input": "hi"})),
    "google-embed": ("embeddings", lambda c, h: c.post(
        "/google/v1beta/models/mock/embed:embedContent", headers=h,
        json={"content": {"parts": [{"text": "hi"}]}})),
    "openai-images": ("images", lambda c, h: c.post(
        "/v1/images/generations", headers=h,
        json={"model": "mock/image", "prompt": "a cat", "size": "64x64"})),
    "openai-image-edit": ("images", lambda c, h: c.post(
        "/v1/images/edits", headers=h, data={"model": "mock/image", "prompt": "blue",
                                              "size": "64x64"},
        files={"image": ("a.png", PNG, "image/png")})),
    "google-image": ("images", lambda c, h: c.post(
        "/google/v1beta/models/mock/image:generateContent", headers=h,
        json={"contents": [{"role": "user", "parts": [{"text": "a cat"}]}]})),
    "midjourney-job": ("images", lambda c, h: c.post(
        "/api/jobs", headers=h,
        json={"kind": "midjourney", "model": "mock/midjourney", "prompt": "a cat"})),
    "openai-speech": ("speech", lambda c, h: c.post(
        "/v1/audio/speech", headers=h, json={"model": "mock/speech", "input": "hello"})),
    "video-job": ("video", lambda c, h: c.post(
        "/api/jobs", headers=h, json={"kind": "video", "model": "mock/video",
                                      "prompt": "a cat"})),
}
CHAT_FEATURES = {"chat", "playground", "compare"}


def enabled(tenant: str, feature: str) -> bool:
    features = set(SCHOOLS[tenant])
    return bool(features & CHAT_FEATURES) if feature == "chat" else feature in features


@pytest.mark.parametrize("tenant", list(SCHOOLS))
@pytest.mark.parametrize("door", list(DOORS))
def test_every_door_obeys_the_schools_features(doors: TestClient, door: str, tenant: str):
    feature, knock = DOORS[door]
    before = doors.get("/api/history", headers=bearer(tenant), params={"limit": 1}).json()
    response = knock(doors, bearer(tenant))
    if enabled(tenant, feature):
        assert response.status_code in (200, 202), response.text
        assert b"feature_disabled" not in response.content
        return
    assert response.status_code == 403, response.text
    body = response.json()
    # Each face answers in its own vendor's shape, with our stable code inside.
    text = json.dumps(body)
    assert "feature_disabled" in text or "FEATURE_DISABLED" in text
    assert "has not switched on" in text and "Ask your teacher" in text
    rows = doors.get("/api/history", headers=bearer(tenant), params={"limit": 1}).json()
    assert rows["total"] == before["total"] + 1  # the refusal left a row
    assert rows["items"][0]["error_code"] == "feature_disabled"
    assert rows["items"][0]["status"] == "error"


def test_chat_playground_and_compare_each_open_chat_completions(doors: TestClient):
    for tenant in ("playonly", "compareonly", "everything"):
        assert DOORS["openai-chat"][1](doors, bearer(tenant)).status_code == 200
    refused = DOORS["openai-chat"][1](doors, bearer("nothing")).json()["error"]
    assert refused["code"] == "feature_disabled"
    assert "'chat' or 'playground' or 'compare'" in refused["message"]


def test_models_list_only_what_the_caller_could_use(doors: TestClient):
    def ids(tenant: str) -> set[str]:
        return {m["id"] for m in doors.get("/v1/models", headers=bearer(tenant)).json()["data"]}

    assert ids("nothing") == set()  # no feature that any model belongs to
    play = ids("playonly")
    assert "mock/echo" in play and "mock/image" not in play and "mock/embed" not in play
    everything = ids("everything")
    assert {"mock/echo", "mock/image", "mock/embed", "mock/speech", "mock/video"} <= everything


def test_a_load_test_of_a_school_without_chat_is_refused_up_front(doors: TestClient):
    response = doors.post("/api/loadtests", headers=bearer("admin"), json={
        "plan": {"name": "<script>x</script>", "tenant": "nothing", "mode": "mock", "rounds": [
            {"model": "mock/echo", "users": 2, "requests_per_user": 1}]}})
    assert response.status_code in (400, 422), response.text
    error = response.json()["error"]
    assert "has not switched on chat completions" in error["message"]
    assert error["param"].startswith("rounds[0]")


# -- money: unknown names never get round a budget ----------------------------------------

PRICED = ["gpt-4.1", "gpt-4.1-mini", "claude-haiku-4-5", "gemini-2.5-flash"]
SNAPSHOTS = {  # a dated snapshot or alias → the base it is charged as
    "gpt-4.1-2025-04-14": "gpt-4.1",
    "gpt-4.1-mini-2025-04-14": "gpt-4.1-mini",
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
    "gemini-2.5-flash-001": "gemini-2.5-flash",
    "gemini-2.5-flash-preview-09-2025": "gemini-2.5-flash",
    "gemini-flash-latest": "gemini-2.5-flash",
}
UNKNOWN = ["gpt-4.1-turbo", "gpt-4.1-한국어", "gpt-4.1<img src=x onerror=alert(1)>",
           "claude-opus-9", "gemini-ultra-2025-01-01", "gpt-4.1-2025-13-99x"]


@pytest.mark.parametrize("who", ["everything", "admin"])  # a student with a budget; none
@pytest.mark.parametrize("model", PRICED + list(SNAPSHOTS) + UNKNOWN)
def test_the_price_of_every_name_or_a_refusal_for_a_budgeted_caller(
        doors: TestClient, model: str, who: str):
    """No provider key serves these schools, so a name that passes policy gets as far as
    the pool (no_key_available, 503); an unpriced one is refused before that (403,
    model_unpriced) to a caller with a dollar budget, and only to them."""
    response = doors.post("/v1/chat/completions", headers=bearer(who),
                          json={"model": model, "messages": HI})
    error = response.json()["error"]
    if model in UNKNOWN and who != "admin":
        assert (response.status_code, error["code"]) == (403, "model_unpriced")
        assert "administrator must give it a price" in error["message"]
        row = doors.get("/api/history", headers=bearer(who), params={"limit": 1}).json()
        assert (row["items"][0]["model"], row["items"][0]["error_code"]) == (
            model, "model_unpriced")
    else:
        assert (response.status_code, error["code"]) == (503, "no_key_available")


def test_snapshots_are_priced_as_their_base():
    catalog = CATALOG
    for name, base in SNAPSHOTS.items():
        info = catalog.resolve(name)
        assert info is not None and info.priced_as == base and info.id == name
        assert info.prices == catalog.get(base).prices and info.vendor_model == name
    for name in UNKNOWN:
        assert catalog.resolve(name) is None
    listed = catalog.resolve("gpt-4o-2024-05-13")  # a snapshot with its own, higher price
    assert listed is not None and listed.priced_as is None
    assert listed.prices["input_per_mtok"] > catalog.get("gpt-4o").prices["input_per_mtok"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.text(min_size=1, max_size=24))
def test_any_made_up_name_is_priced_or_refused_never_free(doors: TestClient, suffix: str):
    """Whatever follows a family prefix the school allows, a budgeted student's call is
    refused as unpriced, or it resolves to a real price; it is never let through unpriced."""
    model = "gpt-4.1" + suffix
    response = doors.post("/v1/chat/completions", headers=bearer("everything"),
                          json={"model": model, "messages": HI})
    assert response.status_code < 500 or response.json()["error"]["code"] == "no_key_available"
    info = CATALOG.resolve(model)
    code = response.json().get("error", {}).get("code")
    if info is None or not info.has_price:
        assert code in ("model_unpriced", "invalid_request", "model_not_allowed",
                        "model_not_found"), (model, response.text)
    else:
        assert code in ("no_key_available", "model_not_allowed"), (model, response.text)


def test_models_without_a_price_are_listed_only_to_callers_without_a_dollar_limit(
        doors: TestClient):
    from gateway.pricing import ModelInfo

    catalog = doors.app.app.state.services.providers.catalog  # type: ignore[attr-defined]
    catalog.set_local({"mock/unpriced": ModelInfo(id="mock/unpriced", provider="mock")})
    try:
        def ids(who: str) -> set[str]:
            data = doors.get("/v1/models", headers=bearer(who)).json()["data"]
            return {m["id"] for m in data}

        assert "mock/unpriced" not in ids("everything")  # a student with a budget
        assert "mock/unpriced" in ids("admin")  # no dollar limit
        refused = doors.post("/v1/chat/completions", headers=bearer("everything"),
                             json={"model": "mock/unpriced", "messages": HI})
        assert refused.json()["error"]["code"] == "model_unpriced"
        served = doors.post("/v1/chat/completions", headers=bearer("admin"),
                            json={"model": "mock/unpriced", "messages": HI})
        assert served.status_code == 200, served.text
        row = doors.get("/api/history", headers=bearer("admin"), params={"limit": 1}).json()
        assert (row["items"][0]["cost_status"], row["items"][0]["cost_micro_usd"]) == (
            "unpriced", None)  # never recorded as $0
    finally:
        catalog.set_local({})


def test_an_admins_price_makes_a_model_usable_and_a_bad_prices_file_changes_nothing(
        tmp_path: Path, tokens_file: Path, tokens: dict[str, str]):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."mock/made-up"]\nprovider = "mock"\nkind = "chat"\n'
                      'input_per_mtok = 0\noutput_per_mtok = "0"\n')
    settings = Settings(data_dir=tmp_path / "data", auth_tokens_file=tokens_file,
                        tenants_dir=REPO / "tenants", mock_ttft_ms=0, mock_tokens_per_second=0,
                        prices_file=prices, hub_api_url=None)
    with TestClient(create_asgi(settings)) as client:
        student = {"Authorization": f"Bearer {tokens['student_a']}"}
        listed = client.get("/v1/models", headers=student)
        entry = next(m for m in listed.json()["data"] if m["id"] == "mock/made-up")
        assert entry["pricing"] == {"input_per_mtok": "0", "output_per_mtok": "0"}
        # A broken prices file is refused on reload and the running prices are kept.
        prices.write_text('[models."x"]\nprovider = "openai"\nkind = "chat"\n'
                          'input_per_mtok = "-1"\noutput_per_mtok = "1"\n')
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        refused = client.post("/api/admin/reload", headers=admin)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "config_invalid" and "cannot be negative" in error["message"]
        assert error["problems"][0]["line"] == 1
        still = client.get("/v1/models", headers=student)
        assert "mock/made-up" in {m["id"] for m in still.json()["data"]}
