"""The classroom API: who am I, and my history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from gateway.api.deps import CurrentUser, Offset, RowId, ServicesDep
from gateway.auth import Identity
from gateway.errors import Forbidden, NotFound
from gateway.history import rows_to_public, run_to_public
from gateway.policy import tenant_of

router = APIRouter(prefix="/api", tags=["Classroom"])


@router.get("/me", summary="The caller: name, school, role, permissions")
async def me(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    tenant = tenant_of(identity, services.tenants)
    return {
        "name": identity.name,
        "tenant": identity.tenant,
        "tenant_display_name": tenant.display_name,
        "role": identity.role,
        "scopes": sorted(identity.scopes),
        "groups": list(identity.groups),
        "branding": tenant.branding.model_dump(),
        "enabled_features": tenant.enabled_features,
        "quota": await services.admission.status(identity),
    }


@router.get("/history", summary="Your own calls, newest first")
async def history(
    identity: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    model: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["running", "ok", "error", "interrupted"] | None = None,
) -> dict[str, Any]:
    rows, total = await services.history.list_runs(
        user=identity.name, model=model, status=status, limit=limit, offset=offset
    )
    return {"items": rows_to_public(rows), "total": total, "limit": limit, "offset": offset}


@router.get("/history/{run_id}", summary="One of your calls")
async def history_item(
    run_id: RowId, identity: CurrentUser, services: ServicesDep
) -> dict[str, Any]:
    row = await services.history.get(run_id)
    if row is None or row["user"] != identity.name:
        # Someone else's run looks exactly like a missing one.
        raise NotFound(f"You have no call with id {run_id}.")
    return run_to_public(row)


@router.get("/runs", summary="Calls of your school (teachers) or of everyone (admins)")
async def runs(
    identity: CurrentUser,
    services: ServicesDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=128)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["running", "ok", "error", "interrupted"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    scope_tenant = visible_tenant(identity, tenant)
    rows, total = await services.history.list_runs(
        user=user, tenant=scope_tenant, model=model, status=status, limit=limit, offset=offset
    )
    return {"items": rows_to_public(rows), "total": total, "limit": limit, "offset": offset}


def visible_tenant(identity: Identity, asked: str | None) -> str | None:
    """The tenant a query is limited to: admins choose, teachers get their own, others none."""
    if identity.is_admin:
        return asked
    target = asked or identity.tenant
    if identity.can_teach(target):
        return target
    raise Forbidden(
        "Only teachers (for their own school) and administrators can see other people's calls."
    )
