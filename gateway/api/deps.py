"""Dependencies shared by the routers: the app's services and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from gateway.auth import Identity, identify
from gateway.composition import Services
from gateway.contract import SOURCE_HEADER
from gateway.edge.asgi import source_of
from gateway.errors import Forbidden

# Whole numbers that reach the database must fit its signed 64-bit integers.
DB_INT_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX)]


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_identity(request: Request, services: ServicesDep) -> Identity:
    return await identify(services.resolver, request.headers)


CurrentUser = Annotated[Identity, Depends(current_identity)]


class RoleCheck:
    """A route dependency that lets a caller in only with a role, saying what was refused.

    ``Annotated[Identity, Depends(RoleCheck(...))]`` is the caller, checked before the
    handler runs: one implementation of each role check, named where a router uses it.
    """

    def __init__(self, allowed: Callable[[Identity], bool], refusal: str) -> None:
        self.allowed = allowed
        self.refusal = refusal

    async def __call__(self, identity: CurrentUser) -> Identity:
        self.check(identity)
        return identity

    def check(self, identity: Identity) -> None:
        """The same check, for a handler that needs it only on one branch."""
        if not self.allowed(identity):
            raise Forbidden(self.refusal)


def admins_only(doing: str) -> RoleCheck:
    """Administrators only; ``doing`` ends "Only administrators can ..."."""
    return RoleCheck(lambda identity: identity.is_admin, f"Only administrators can {doing}.")


def teachers_of_their_school(doing: str) -> RoleCheck:
    """Teachers of the caller's own school, and administrators."""
    return RoleCheck(lambda identity: identity.can_teach(identity.tenant),
                     f"Only teachers and administrators can {doing}.")


# The role checks, each named once; a router picks the one whose refusal fits its resource.
POOL_ADMIN = admins_only("see or change the key pool and quota overrides")
HOUSEKEEPING_ADMIN = admins_only("do housekeeping")
LOADTEST_ADMIN = admins_only("run and read load tests")
PAUSES_TEACHER = teachers_of_their_school("see pauses")
PoolAdmin = Annotated[Identity, Depends(POOL_ADMIN)]
HousekeepingAdmin = Annotated[Identity, Depends(HOUSEKEEPING_ADMIN)]
LoadTestAdmin = Annotated[Identity, Depends(LOADTEST_ADMIN)]
TeacherOfSchool = Annotated[Identity, Depends(PAUSES_TEACHER)]


def call_source(request: Request) -> str:
    """Where a call came from: widgets say so in a header; everything else is the SDK path."""
    return source_of(request.headers.get(SOURCE_HEADER))
