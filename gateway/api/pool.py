"""Key pool, pauses and quota overrides: what admins and teachers steer.

Every change writes an audit entry. No response ever carries a key: only its
name and last four characters.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from gateway.api.deps import DB_INT_MAX, CurrentUser, PoolAdmin, RowId, ServicesDep, TeacherOfSchool
from gateway.auth import Identity
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.history.audit import record_audit
from gateway.keypool.keys import LIMIT_MAX, PROVIDERS, KeysFileError, parse_entry
from gateway.logmask import mask_secrets

router = APIRouter(prefix="/api", tags=["Key pool and controls"])



@router.get("/pool", summary="Live pool state: per key and per user (admins)")
async def pool_state(identity: PoolAdmin, services: ServicesDep) -> dict[str, Any]:
    snapshot = services.pool.snapshot()
    stored = await asyncio.to_thread(services.keystore.listing) if services.keystore else []
    live = {(k["provider"], k["name"]) for k in snapshot["keys"]}
    snapshot["inactive_keys"] = [k for k in stored if (k["provider"], k["name"]) not in live]
    return snapshot


@router.get("/keys", summary="Every stored key, without secrets (admins)")
async def list_keys(identity: PoolAdmin, services: ServicesDep) -> dict[str, Any]:
    return {"keys": await asyncio.to_thread(services.keystore.listing) if services.keystore else []}


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description=f"One of {', '.join(PROVIDERS)}.")
    name: str = Field(min_length=1, max_length=120)
    api_key: str | None = Field(default=None, max_length=4000)
    access_key: str | None = Field(default=None, max_length=4000)
    secret_key: str | None = Field(default=None, max_length=4000)
    concurrency_limit: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    rpm_limit: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    tpm_limit: int | None = Field(default=None, ge=1, le=LIMIT_MAX)
    priority: int = Field(default=0, ge=-LIMIT_MAX, le=LIMIT_MAX)
    tenant_scope: list[str] = Field(default_factory=lambda: ["*"])
    base_url: str | None = None


@router.post("/keys", summary="Add or replace a key (admins)", status_code=201)
async def add_key(body: NewKey, identity: PoolAdmin, services: ServicesDep) -> dict[str, Any]:
    if body.provider not in PROVIDERS:
        raise InvalidRequest(
            f"Unknown provider '{body.provider}'; use one of {list(PROVIDERS)}.", param="provider"
        )
    entry = body.model_dump(exclude={"provider"}, exclude_none=True)
    try:
        key = parse_entry(f"new {body.provider} key", body.provider, entry)
    except KeysFileError as error:
        raise InvalidRequest(str(error), param=error.field) from None
    store = services.keystore

    def write(conn: Connection) -> bool:
        return store.upsert_admin_key(conn, key)

    created = await services.history.write(write)
    mask_secrets(key.secret, key.secret2)
    services.pool.upsert_key(key)
    services.pool.set_health(key.provider, key.name, True)
    await record_audit(
        services.history,
        identity,
        "key.add" if created else "key.replace",
        target=f"{key.provider}/{key.name}",
        tenant=None,
        details={"last4": key.last4, "tenant_scope": list(key.tenant_scope)},
    )
    return {"provider": key.provider, "name": key.name, "last4": key.last4, "created": created}


async def _set_key(
    services: Any, identity: Identity, provider: str, name: str, active: bool
) -> dict[str, Any]:
    store = services.keystore
    if store is None:
        raise NotFound(f"There is no {provider} key named '{name}'.")

    def write(conn: Connection) -> Any:
        if not store.set_state(
            conn, provider, name, is_active=active, healthy=True if active else None
        ):
            return None
        return store.get(conn, provider, name)

    key = await services.history.write(write)
    if key is None:
        raise NotFound(f"There is no {provider} key named '{name}'.")
    services.pool.upsert_key(key)
    if active:
        services.pool.set_health(provider, name, True)
    await record_audit(
        services.history,
        identity,
        "key.enable" if active else "key.disable",
        target=f"{provider}/{name}",
        tenant=None,
    )
    return {"provider": provider, "name": name, "is_active": active}


@router.post("/keys/{provider}/{name}/disable", summary="Take a key out of rotation (admins)")
async def disable_key(
    provider: str, name: str, identity: PoolAdmin, services: ServicesDep
) -> dict[str, Any]:
    return await _set_key(services, identity, provider, name, False)


@router.post("/keys/{provider}/{name}/enable", summary="Put a key back, healthy (admins)")
async def enable_key(
    provider: str, name: str, identity: PoolAdmin, services: ServicesDep
) -> dict[str, Any]:
    return await _set_key(services, identity, provider, name, True)


# -- pauses (teachers of the school, admins) ------------------------------------------


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(
        default=None, max_length=128, description="One student; omit for the whole class."
    )
    tenant: str | None = Field(
        default=None, max_length=64, description="Admins only; teachers pause their own school."
    )
    reason: str | None = Field(default=None, max_length=500)


@router.get("/pauses", summary="Current pauses of your school (teachers) or all (admins)")
async def list_pauses(identity: TeacherOfSchool, services: ServicesDep) -> dict[str, Any]:
    if identity.is_admin:
        return {"pauses": services.admission.pauses_of(None)}
    return {"pauses": services.admission.pauses_of(identity.tenant)}


@router.post("/pauses", summary="Pause one student or the whole class", status_code=201)
async def pause(body: PauseRequest, identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    tenant = body.tenant or identity.tenant
    if not identity.can_teach(tenant):
        raise Forbidden(
            "Only a teacher of that school (or an administrator) can pause its students."
        )
    if tenant not in services.tenants:
        raise InvalidRequest(f"There is no school '{tenant}'.", param="tenant")
    row = await services.admission.pause(tenant, body.user, identity.name, body.reason)
    await record_audit(
        services.history,
        identity,
        "pause",
        target=body.user or f"class:{tenant}",
        tenant=tenant,
        details={"reason": body.reason},
    )
    return row


@router.delete("/pauses/{pause_id}", summary="Resume")
async def resume(pause_id: RowId, identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    found = next((p for p in services.admission.pauses_of(None) if p["id"] == pause_id), None)
    if found is None or not identity.can_teach(found["tenant"]):
        raise NotFound(f"There is no pause {pause_id} you can lift.")
    await services.admission.resume(pause_id)
    await record_audit(
        services.history,
        identity,
        "resume",
        target=found["user"] or f"class:{found['tenant']}",
        tenant=found["tenant"],
    )
    return {"resumed": pause_id}


# -- per-user quota overrides (admins) ----------------------------------------------------


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(max_length=64)
    requests_per_day: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    tokens_per_day: int | None = Field(default=None, ge=0, le=DB_INT_MAX)
    usd_per_month: float | None = Field(default=None, ge=0)
    concurrent_requests: int | None = Field(default=None, ge=1, le=LIMIT_MAX)


@router.get("/overrides", summary="Per-user quota overrides (admins)")
async def list_overrides(
    identity: PoolAdmin,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    return {"overrides": services.admission.overrides_of(tenant)}


@router.put("/overrides/{user}", summary="Set a user's own limits (admins)")
async def set_override(
    user: str,
    identity: PoolAdmin,
    services: ServicesDep,
    body: Annotated[Override, Body()],
) -> dict[str, Any]:
    if body.tenant not in services.tenants:
        raise InvalidRequest(f"There is no school '{body.tenant}'.", param="tenant")
    values = body.model_dump(exclude={"tenant"})
    row = await services.admission.set_override(user, body.tenant, identity.name, values)
    await record_audit(
        services.history,
        identity,
        "quota.override",
        target=user,
        tenant=body.tenant,
        details=values,
    )
    return row


@router.delete("/overrides/{user}", summary="Back to the school's limits (admins)")
async def clear_override(user: str, identity: PoolAdmin, services: ServicesDep) -> dict[str, Any]:
    if not await services.admission.clear_override(user):
        raise NotFound(f"{user} has no override.")
    await record_audit(services.history, identity, "quota.clear", target=user)
    return {"cleared": user}
