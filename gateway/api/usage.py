"""Usage, live activity and per-student drill-down, scoped by who asks.

A student sees only their own numbers, a teacher their school's, an admin
everyone's; the scopes of the caller's identity decide
(``custom:gateway:teach!group=tenant-<id>`` means "teacher of that school").
Asking for more than that is refused with 403, never silently widened.
The numbers come from :mod:`gateway.history.usage`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.engine import Connection

from gateway.api.deps import CurrentUser, ServicesDep
from gateway.auth import Identity
from gateway.contract import SCOPE_TEACH
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.history import conversations
from gateway.history.progress import ProgressFilter, lesson_progress
from gateway.history.review import student_work
from gateway.history.usage import (
    GROUP_BY,
    GROUP_BY_PATTERN,
    Totals,
    UsageFilter,
    activity,
    aggregate,
    estimate,
    iter_live,
    iter_runs,
    month_start,
    next_month,
    own_usage,
    parse_time,
)

router = APIRouter(prefix="/api", tags=["Usage and monitoring"])

Name = Annotated[str | None, Query(max_length=200)]
Start = Annotated[str | None, Query(description="From this date or time (UTC), inclusive.")]
End = Annotated[str | None, Query(description="Until this date (inclusive) or time.")]


def visible_scope(
    identity: Identity, tenant: str | None, user: str | None
) -> tuple[str | None, str | None]:
    """``(tenant, user)`` a query is limited to; Forbidden when it asks for more than allowed.

    Admins choose freely. A teacher gets their own school (or another school
    they teach), any user within it. Everyone else gets exactly themselves.
    """
    if identity.is_admin:
        return tenant, user
    target = tenant or identity.tenant
    if identity.can_teach(target):
        return target, user
    if tenant is not None and tenant != identity.tenant:
        raise Forbidden("You can only see the usage of your own school.")
    if user is not None and user != identity.name:
        raise Forbidden("Students can only see their own usage.")
    return None, identity.name


def _time_range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    try:
        return parse_time(start), parse_time(end, end=True)
    except ValueError:
        raise InvalidRequest(
            "start and end must be dates (2025-03-01) or ISO date-times (2025-03-01T09:00:00Z).",
            param="start" if start else "end",
        ) from None


@router.get("/usage", summary="Usage aggregates: requests, errors, tokens, cost, latency")
async def usage(
    identity: CurrentUser,
    services: ServicesDep,
    start: Start = None,
    end: End = None,
    tenant: Name = None,
    user: Name = None,
    provider: Name = None,
    model: Name = None,
    source: Name = None,
    notebook: Annotated[str | None, Query(max_length=255, description=(
        "Only calls from this notebook (its path in the lab: lessons/01_first_chat.ipynb)."
    ))] = None,
    group_by: Annotated[str, Query(
        pattern=GROUP_BY_PATTERN,
        description=f"One or more of {', '.join(GROUP_BY)}, comma-separated (day,tenant,model).",
    )] = "day",
) -> dict[str, Any]:
    scope_tenant, scope_user = visible_scope(identity, tenant, user)
    begin, finish = _time_range(start, end)
    flt = UsageFilter(begin, finish, scope_tenant, scope_user, provider, model, source,
                      notebook=notebook)
    report = await services.history.read(lambda c: aggregate(iter_runs(c, flt), group_by))
    report["filters"] = {
        "start": start, "end": end, "tenant": scope_tenant, "user": scope_user,
        "provider": provider, "model": model, "source": source, "notebook": notebook,
    }
    return report


@router.get("/lessons/progress", summary="Who ran which lesson, how far, and when")
async def lessons_progress(
    identity: CurrentUser,
    services: ServicesDep,
    start: Start = None,
    end: End = None,
    tenant: Name = None,
    user: Name = None,
) -> dict[str, Any]:
    """One row per student and lesson (a notebook under ``lessons/``) that called a model:
    calls, errors, first and last call, and how far (the cell of the latest call and the
    furthest cell, as places among the lesson's code cells). From the notebook and cell
    each call recorded; see :mod:`gateway.history.progress`."""
    scope_tenant, scope_user = visible_scope(identity, tenant, user)
    begin, finish = _time_range(start, end)
    flt = ProgressFilter(scope_tenant, scope_user, begin, finish)
    rows = await services.history.read(lambda c: lesson_progress(c, flt))
    return {"items": rows, "filters": {"tenant": scope_tenant, "user": scope_user,
                                       "start": start, "end": end}}


@router.get("/usage/me", summary="Your own use today and this month, against your limits")
async def usage_me(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    now = datetime.now(UTC)
    flt = UsageFilter(start=month_start(now).timestamp(), user=identity.name)
    mine = await services.history.read(lambda c: own_usage(iter_runs(c, flt), now))
    tenant = services.tenants.get(identity.tenant)
    quota = tenant.quota_for(identity.role).model_dump() if tenant else {}
    return {
        "user": identity.name,
        "tenant": identity.tenant,
        "role": identity.role,
        **mine,
        "quota": quota,
        "limits": await services.admission.status(identity),
    }


@router.get("/usage/estimate", summary="Cost estimate for a period, by model")
async def usage_estimate(
    identity: CurrentUser,
    services: ServicesDep,
    start: Annotated[str | None, Query(description="Default: the first of this month.")] = None,
    end: Annotated[str | None, Query(description="Default: the end of this month.")] = None,
    tenant: Name = None,
    user: Name = None,
    provider: Name = None,
    model: Name = None,
    session: Annotated[str | None, Query(max_length=40,
                                         description="Only the calls of one session.")] = None,
) -> dict[str, Any]:
    scope_tenant, scope_user = visible_scope(identity, tenant, user)
    if session is not None:
        owner = conversations.Owner(identity.name, identity.tenant)
        await services.history.read(
            lambda c: conversations.check_readable(c, owner, session, identity.can_teach))
    now = datetime.now(UTC)
    begin, finish = _time_range(start, end)
    begin = month_start(now).timestamp() if begin is None else begin
    finish = next_month(now).timestamp() if finish is None else finish
    if finish <= begin:
        raise InvalidRequest("end must be after start.", param="end")
    flt = UsageFilter(begin, finish, scope_tenant, scope_user, provider, model, session=session)
    catalog, now_s = services.providers.catalog, time.time()
    result = await services.history.read(
        lambda c: estimate(iter_runs(c, flt), catalog, begin, finish, now_s))
    result["filters"] = {"tenant": scope_tenant, "user": scope_user,
                         "provider": provider, "model": model, "session": session}
    return result


@router.get("/activity", summary="Live monitoring: running calls, last minutes, queue, budget")
async def live_activity(
    identity: CurrentUser,
    services: ServicesDep,
    tenant: Name = None,
    window_minutes: Annotated[int, Query(ge=1, le=240)] = 15,
) -> dict[str, Any]:
    scope_tenant, scope_user = visible_scope(identity, tenant, None)
    now = time.time()
    since = now - window_minutes * 60
    month = month_start(datetime.now(UTC)).timestamp()

    def read(connection: Connection) -> tuple[dict[str, Any], Totals, set[str]]:
        live = iter_live(connection, UsageFilter(tenant=scope_tenant, user=scope_user), since)
        report = activity(live, now, window_minutes)
        # Summed as read, like the window: a dashboard polled all day keeps no rows.
        month_totals, students = Totals(), set()
        for row in iter_runs(connection, UsageFilter(start=month, tenant=scope_tenant,
                                                      user=scope_user)):
            month_totals.add(row)
            if row["role"] == "student":
                students.add(row["user"])
        return report, month_totals, students

    report, monthly, students = await services.history.read(read)
    report["scope"] = {"tenant": scope_tenant, "user": scope_user}
    # Who waits in the key pool's queues, limited to the people this caller may see.
    visible_users = {r["user"] for r in report["running"]}
    snapshot = services.pool.snapshot()
    report["queue"] = [
        u for u in snapshot.get("users", [])
        if (identity.is_admin and scope_tenant is None) or u["user"] in visible_users
    ]
    month_totals = monthly.public()
    report["month"] = month_totals
    budget: dict[str, Any] = {"spent_usd": month_totals["cost_usd"]}
    school = services.tenants.get(scope_tenant or identity.tenant)
    if scope_user is not None:
        status = await services.admission.status(identity)
        budget["limit_usd"] = status["budget_month"]["limit_usd"]
    elif school is not None:
        per_student = school.quota_for("student").usd_per_month
        budget["per_student_usd"] = per_student
        budget["students_this_month"] = len(students)
        budget["limit_usd"] = None if per_student is None else per_student * len(students)
        if school.budget_usd_per_month is not None and identity.can_teach(school.tenant_id):
            # The school's own budget (a tenant setting) and its alert: the dashboards'
            # banner. The same figures as admission reserves against.
            budget["school"] = await services.admission.school_budget(school.tenant_id)
    report["budget"] = budget
    return report


@router.get("/students/{user}", summary="One student's work: usage, calls, conversations")
async def student(
    user: str,
    identity: CurrentUser,
    services: ServicesDep,
    runs_limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if identity.is_admin:
        tenants: set[str] | None = None
    elif user == identity.name:
        tenants = None
    elif identity.has_scope(SCOPE_TEACH):
        tenants = {t for t in services.tenants if identity.can_teach(t)}
    else:
        raise Forbidden("Students can only see their own work.")
    now = time.time()
    work = await services.history.read(
        lambda c: student_work(c, user, tenants, runs_limit=runs_limit, now=now)
    )
    if work is None:
        # Someone of another school looks exactly like nobody.
        raise NotFound(f"There is no work of {user!r} to show.")
    return work
