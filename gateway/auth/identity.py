"""Who is calling: the identity model and the two ways to resolve a token.

A caller presents a token as ``Authorization: Bearer|token``, ``x-api-key``
(Anthropic SDK) or ``x-goog-api-key`` (google-genai). Behind the hub the token
is a hub token, resolved with ``GET {hub}/user`` and cached for at most 60 s;
standalone, tokens come from a JSON file. Either way the result is an
:class:`Identity` with a tenant and a role taken from the hub groups
``tenant-<id>`` and ``role-<role>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from gateway.contract import (
    ROLE_RANK,  # noqa: F401 - re-exported
    ROLE_SCOPES,  # noqa: F401 - re-exported
    SCOPE_ADMIN,
    SCOPE_TEACH,
    SCOPE_USE,
    TOKEN_HEADERS,
    role_group,
    tenant_group,
    tenants_in,
    top_role,
)
from gateway.errors import Forbidden, InvalidToken

log = logging.getLogger("gateway.auth")

USE, TEACH, ADMIN = SCOPE_USE, SCOPE_TEACH, SCOPE_ADMIN


@dataclass(frozen=True)
class Identity:
    name: str
    tenant: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    groups: tuple[str, ...] = ()
    kind: str = "user"

    def _scope_filters(self, scope: str) -> list[str] | None:
        """Filters attached to a scope (``None``: not held; ``[]``: held unfiltered)."""
        filters: list[str] = []
        held = False
        for item in self.scopes:
            base, _, flt = item.partition("!")
            if base == scope:
                held = True
                if not flt:
                    return []
                filters.append(flt)
        return filters if held else None

    def has_scope(self, scope: str) -> bool:
        return self._scope_filters(scope) is not None

    def can_teach(self, tenant: str) -> bool:
        """Teachers may act on their own school; ``!group=tenant-<id>`` filters say which."""
        if self.has_scope(ADMIN):
            return True
        filters = self._scope_filters(TEACH)
        if filters is None:
            return False
        if filters == []:
            return tenant == self.tenant
        return f"group={tenant_group(tenant)}" in filters

    @property
    def is_admin(self) -> bool:
        return self.has_scope(ADMIN)


def identity_from_groups(
    name: str, groups: list[str], scopes: list[str], kind: str = "user"
) -> Identity:
    tenants = tenants_in(groups)
    role = top_role(groups)
    return Identity(
        name=name,
        tenant=tenants[0] if tenants else "default",
        role=role,
        scopes=frozenset(scopes),
        groups=tuple(sorted(groups)),
        kind=kind,
    )


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in {"bearer", "token"} and value.strip():
            return value.strip()
    for name in TOKEN_HEADERS:
        key = headers.get(name)
        if key and key.strip():
            return key.strip()
    return None


class TokenResolver(Protocol):
    async def resolve(self, token: str) -> Identity: ...

    async def aclose(self) -> None: ...


async def identify(resolver: TokenResolver, headers: Mapping[str, str]) -> Identity:
    """Who sent a request, from its headers (``Authorization``, ``x-api-key`` or
    ``x-goog-api-key``, as each SDK sends its key)."""
    token = token_from_headers(headers)
    if token is None:
        raise InvalidToken(
            "No API token was sent. Inside the classroom the SDKs find it automatically; "
            "elsewhere set CLASSROOM_API_TOKEN (or pass api_key=...)."
        )
    return await resolver.resolve(token)


class StaticTokens:
    """Tokens from ``CLASSROOM_AUTH_TOKENS_FILE``: for development, benchmarks and tests."""

    def __init__(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = raw["tokens"]
            self._tokens = {
                token: Identity(
                    name=str(entry["name"]),
                    tenant=str(entry.get("tenant", "default")),
                    role=str(entry.get("role", "student")),
                    scopes=frozenset(ROLE_SCOPES.get(str(entry.get("role", "student")), (USE,))),
                    groups=(
                        tenant_group(str(entry.get("tenant", "default"))),
                        role_group(str(entry.get("role", "student"))),
                        *map(str, entry.get("groups", ())),  # more hub groups: classes
                    ),
                    kind=str(entry.get("kind", "user")),
                )
                for token, entry in entries.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SystemExit(
                f"{path}: not a tokens file "
                f"({{\"tokens\": {{token: {{name, tenant, role}}}}}}): {exc}"
            ) from exc

    async def resolve(self, token: str) -> Identity:
        identity = self._tokens.get(token)
        if identity is None:
            raise InvalidToken("Your API token was not accepted. Check the token you are using.")
        return identity

    async def aclose(self) -> None:
        return None


class HubTokens:
    """Resolve hub tokens through the hub's REST API, with a short cache."""

    def __init__(
        self, api_url: str, cache_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = api_url.rstrip("/") + "/user"
        self._ttl = min(cache_seconds, 60.0)
        self._cache: dict[str, tuple[float, Identity]] = {}
        self._inflight: dict[str, asyncio.Future[Identity]] = {}
        # The hub is inside the deployment: never reached through the network's proxy.
        self._client = httpx.AsyncClient(timeout=10.0, transport=transport, trust_env=False)

    @staticmethod
    def _key(token: str) -> str:
        # Cache keys are digests so that a heap dump does not list live tokens.
        return hashlib.sha256(token.encode()).hexdigest()

    async def resolve(self, token: str) -> Identity:
        key = self._key(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Identity] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            identity = await self._fetch(token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(identity)
            self._cache[key] = (time.monotonic() + self._ttl, identity)
            if len(self._cache) > 10_000:
                self._evict(time.monotonic())
            return identity
        finally:
            self._inflight.pop(key, None)

    def _evict(self, now: float) -> None:
        for key in [k for k, (exp, _) in self._cache.items() if exp <= now]:
            del self._cache[key]

    async def _fetch(self, token: str) -> Identity:
        try:
            response = await self._client.get(
                self._url, headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as exc:
            log.warning("hub unreachable while checking a token: %s", type(exc).__name__)
            raise Forbidden(
                "The classroom hub could not be reached to check your token. Try again shortly."
            ) from exc
        if response.status_code in (401, 403):
            raise InvalidToken(
                "Your session token was not accepted. Restart your server from the hub "
                "home page, or log in again."
            )
        if response.status_code != 200:
            log.warning("hub answered %s while checking a token", response.status_code)
            raise Forbidden("The classroom hub could not check your token. Try again shortly.")
        model = response.json()
        kind = model.get("kind", "user")
        return identity_from_groups(
            str(model.get("name")), list(model.get("groups") or []),
            list(model.get("scopes") or []), kind=kind,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
