"""Suno accounts (the seed platform's Suno tab).

- ``GET /api/suno/me``: your assigned account (email and memo) or that none is assigned;
- ``POST /api/suno/me/reveal``: its password, for you only; audited;
- ``GET /api/suno/accounts``, ``GET /api/suno/assignments``: administrators only;
- ``PUT /api/suno/assignments/{user}`` (``{"account_id": 3, "tenant": "school_a"}``) and
  ``DELETE /api/suno/assignments/{user}``: administrators assign and take back; audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import CurrentUser, ServicesDep

router = APIRouter(prefix="/api/suno", tags=["Suno accounts"])
User = Annotated[str, Path(min_length=1, max_length=128)]


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: int = Field(ge=0, le=2**31 - 1, description="0 takes the assignment away.")
    tenant: str | None = Field(default=None, max_length=64,
                               description="The person's school (for the audit log).")


@router.get("/me", summary="Your Suno account (never its password)")
async def mine(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    return await services.suno.mine(identity)


@router.post("/me/reveal", summary="Your Suno account's password (audited)")
async def reveal(identity: CurrentUser, services: ServicesDep,
                 response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return await services.suno.reveal(identity)


@router.get("/accounts", summary="The school's Suno accounts and who has each (admins)")
async def accounts(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    return {"items": await services.suno.listing(identity)}


@router.get("/assignments", summary="Who has which Suno account (admins)")
async def assignments(
    identity: CurrentUser, services: ServicesDep,
    user: Annotated[list[str] | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    return {"items": await services.suno.assignments(identity, user)}


@router.put("/assignments/{user}", summary="Assign a Suno account to a person (admins)")
async def assign(user: User, body: Assignment, identity: CurrentUser,
                 services: ServicesDep) -> dict[str, Any]:
    return await services.suno.assign(identity, user, body.account_id, body.tenant)


@router.delete("/assignments/{user}", summary="Take a person's Suno account back (admins)")
async def unassign(user: User, identity: CurrentUser, services: ServicesDep,
                   tenant: Annotated[str | None, Query(max_length=64)] = None
                   ) -> dict[str, Any]:
    return await services.suno.assign(identity, user, None, tenant)
