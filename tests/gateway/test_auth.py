"""Identity: token headers, static tokens, hub tokens and their cache, scope filters."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.auth import HubTokens, identity_from_groups, token_from_headers
from gateway.errors import InvalidToken


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer {t}"},
        {"Authorization": "token {t}"},
        {"authorization": "bearer {t}"},
        {"x-api-key": "{t}"},
        {"x-goog-api-key": "{t}"},
    ],
)
def test_every_sdk_header_style_authenticates(gateway_client, tokens, headers):
    sent = {k: v.format(t=tokens["student_a"]) for k, v in headers.items()}
    response = gateway_client.get("/api/me", headers=sent)
    assert response.status_code == 200
    me = response.json()
    assert (me["name"], me["tenant"], me["role"]) == ("stu_a", "school_a", "student")
    assert me["tenant_display_name"] == "Hanbit High School"
    assert "custom:gateway:use" in me["scopes"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"x-api-key": "  "}],
)
def test_missing_token_is_401_invalid_token(gateway_client, headers):
    response = gateway_client.post(
        "/v1/chat/completions", headers=headers,
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_token"
    assert error["type"] == "authentication_error"
    assert "token" in error["message"].lower()


def test_wrong_token_is_401_and_not_echoed(gateway_client):
    response = gateway_client.get("/v1/models", headers={"Authorization": "Bearer not-a-real-token-xyz"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert "not-a-real-token-xyz" not in response.text


def test_token_from_headers_prefers_authorization():
    assert token_from_headers({"authorization": "Bearer a", "x-api-key": "b"}) == "a"
    assert token_from_headers({"x-goog-api-key": "g"}) == "g"
    assert token_from_headers({"authorization": "Basic zzz"}) is None


def test_groups_give_tenant_and_highest_role():
    who = identity_from_groups(
        "t1", ["tenant-school_a", "role-student", "role-teacher", "teachers-school_a"],
        ["custom:gateway:use", "custom:gateway:teach!group=tenant-school_a"],
    )
    assert (who.tenant, who.role) == ("school_a", "teacher")
    assert who.can_teach("school_a")
    assert not who.can_teach("school_b")
    assert not who.is_admin
    nobody = identity_from_groups("x", [], [])
    assert (nobody.tenant, nobody.role) == ("default", "viewer")
    assert not nobody.has_scope("custom:gateway:use")


def _hub(calls: list[str], status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        if status != 200:
            return httpx.Response(status, json={"status": status, "message": "no"})
        return httpx.Response(
            200,
            json={"kind": "user", "name": "stu1", "groups": ["tenant-school_b", "role-student"],
                  "scopes": ["custom:gateway:use", "read:users:name!user=stu1"]},
        )

    return httpx.MockTransport(handler)


def test_hub_tokens_resolve_and_cache():
    calls: list[str] = []

    async def scenario():
        hub = HubTokens("http://hub/hub/api", 60, transport=_hub(calls))
        first = await hub.resolve("tok-1")
        again = await asyncio.gather(*(hub.resolve("tok-1") for _ in range(20)))
        other = await hub.resolve("tok-2")
        await hub.aclose()
        return first, again, other

    first, again, other = asyncio.run(scenario())
    assert (first.name, first.tenant, first.role) == ("stu1", "school_b", "student")
    assert all(a == first for a in again)
    assert other.name == "stu1"
    # one lookup per distinct token: concurrent callers share the in-flight request
    assert calls == ["token tok-1", "token tok-2"]


def test_hub_tokens_cache_expires():
    calls: list[str] = []

    async def scenario():
        hub = HubTokens("http://hub/hub/api", 0, transport=_hub(calls))
        await hub.resolve("tok-1")
        await hub.resolve("tok-1")
        await hub.aclose()

    asyncio.run(scenario())
    assert len(calls) == 2


def test_hub_rejection_is_invalid_token_and_not_cached():
    calls: list[str] = []

    async def scenario():
        hub = HubTokens("http://hub/hub/api", 60, transport=_hub(calls, status=403))
        for _ in range(2):
            with pytest.raises(InvalidToken):
                await hub.resolve("revoked")
        await hub.aclose()

    asyncio.run(scenario())
    assert len(calls) == 2


def test_cache_lifetime_is_capped_at_60_seconds():
    hub = HubTokens("http://hub/hub/api", 3600)
    assert hub._ttl == 60
    asyncio.run(hub.aclose())
