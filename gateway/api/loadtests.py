"""Load tests and the capacity planner (``/api/loadtests``).

Admins start plans (``mock`` mode is free; ``real`` mode needs a cost cap, and
``dry_run`` shows the worst-case cost before anything is sent), watch their
rounds, cancel them, and fetch reports and samples. Teachers may ask the
capacity planner about their own school (``POST /api/loadtests/replay``);
running a replay live is for admins. The logic lives in :mod:`gateway.loadtest`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import (
    LOADTEST_ADMIN,
    CurrentUser,
    LoadTestAdmin,
    Offset,
    RowId,
    Services,
    ServicesDep,
)
from gateway.auth import Identity
from gateway.errors import Conflict, Forbidden, InvalidRequest, NotFound
from gateway.history.audit import record_audit
from gateway.loadtest import store
from gateway.loadtest.lessons import (
    LessonError,
    LessonSelector,
    parse_time,
    pool_limits,
    steps_to_calls,
)
from gateway.loadtest.manager import LoadTests
from gateway.loadtest.plans import LoadPlan, PlanError, parse_plan, plan_to_dict, read_plan_text
from gateway.loadtest.reports import build_report, report_html
from gateway.loadtest.simulate import SimulationError, Step, predict

router = APIRouter(prefix="/api/loadtests", tags=["Load tests"])


async def get_loadtests(services: ServicesDep) -> LoadTests:
    """The app's load tests (built with the other services at start)."""
    return services.loadtests


LoadTestsDep = Annotated[LoadTests, Depends(get_loadtests)]



def plan_error(error: PlanError) -> InvalidRequest:
    where = f"The plan's field '{error.field}'" if error.field else "The plan"
    return InvalidRequest(f"{where} is not valid: {error.message}.", param=error.field)


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: dict[str, Any] | None = Field(default=None, description="The plan as JSON.")
    plan_text: str | None = Field(default=None, max_length=200_000,
                                  description="The plan as YAML or JSON text.")
    mode: Literal["mock", "real"] | None = Field(default=None,
                                                 description="Overrides the plan's mode.")
    cost_cap_usd: float | None = Field(default=None, gt=0,
                                       description="Overrides the plan's cost cap (real mode).")
    dry_run: bool = Field(default=False, description="Check the plan and show the worst-case "
                                                     "cost; start nothing.")


def _plan_of(body: StartBody) -> LoadPlan:
    """The plan sent, with the mode and cost cap given beside it."""
    try:
        data = read_plan_text(body.plan_text) if body.plan_text is not None else body.plan
        if data is None:
            raise PlanError("send the plan (as 'plan' or 'plan_text')", "plan")
        if isinstance(data, dict):
            data = dict(data)
            if body.mode is not None:
                data["mode"] = body.mode
            if body.cost_cap_usd is not None:
                data["cost_cap_usd"] = body.cost_cap_usd
        return parse_plan(data)
    except PlanError as error:
        raise plan_error(error) from None


async def _start(plan: LoadPlan, dry_run: bool, identity: Identity, services: Services,
                 loadtests: LoadTests) -> dict[str, Any]:
    try:
        plan, tenant, models = await loadtests.check(plan, identity)
    except PlanError as error:
        raise plan_error(error) from None
    guess = loadtests.estimate(plan, models)
    if dry_run:
        return {"dry_run": True, "tenant": tenant, "plan": plan_to_dict(plan), "estimate": guess}
    run = await loadtests.start(plan, identity, tenant, models)
    await record_audit(services.history, identity, "loadtest.start", target=str(run.id),
                       tenant=tenant, details={"name": plan.name, "mode": plan.mode,
                                               "cost_cap_usd": plan.cost_cap_usd,
                                               "requests": plan.total_requests})
    return {"id": run.id, "tenant": tenant, "estimate": guess, **run.public()}


@router.post("", summary="Start a load test, or estimate it (admins)", status_code=201)
async def start(body: StartBody, identity: LoadTestAdmin, services: ServicesDep,
                loadtests: LoadTestsDep) -> dict[str, Any]:
    return await _start(_plan_of(body), body.dry_run, identity, services, loadtests)


@router.get("", summary="Load tests, newest first (admins)")
async def list_loadtests(
    identity: LoadTestAdmin, loadtests: LoadTestsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0,
) -> dict[str, Any]:
    items, total = await loadtests.listing(limit=limit, offset=offset)
    return {"items": items, "total": total}


# -- lessons and the capacity planner ---------------------------------------------------------


class LessonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="How replays name it: '03'.")
    user: str | None = Field(default=None, max_length=128,
                             description="Whose calls make the lesson (e.g. the teacher's).")
    source: str | None = Field(default=None, max_length=16,
                               description="Only calls from this source (widget, sdk, ...).")
    since: float | str | None = Field(default=None, description="UNIX seconds or ISO 8601.")
    until: float | str | None = Field(default=None, description="UNIX seconds or ISO 8601.")
    tenant: str | None = Field(default=None, max_length=64,
                               description="Admins only; teachers save for their own school.")
    note: str | None = Field(default=None, max_length=500)


def _planner_tenant(identity: Identity, tenant: str | None, services: Services) -> str:
    chosen = tenant or identity.tenant
    if not identity.can_teach(chosen):
        raise Forbidden("Only a teacher of that school, or an administrator, can plan its "
                        "capacity.")
    if chosen not in services.tenants:
        raise InvalidRequest(f"There is no school '{chosen}'.", param="tenant")
    return chosen


@router.get("/lessons", summary="Saved lesson recordings (teachers: their school)")
async def list_lessons(identity: CurrentUser, services: ServicesDep,
                       loadtests: LoadTestsDep) -> dict[str, Any]:
    tenant = None if identity.is_admin else _planner_tenant(identity, None, services)
    return {"lessons": await services.history.read(lambda c: store.lesson_rows(c, tenant))}


@router.post("/lessons", summary="Save a lesson recording under a name", status_code=201)
async def save_lesson(body: LessonBody, identity: CurrentUser, services: ServicesDep,
                      loadtests: LoadTestsDep) -> dict[str, Any]:
    tenant = _planner_tenant(identity, body.tenant, services)
    try:
        selector = LessonSelector(tenant, body.user, parse_time(body.since, "since"),
                                  parse_time(body.until, "until"), body.source)
        steps = await loadtests.lesson_steps(selector)
    except LessonError as error:
        raise InvalidRequest(f"The lesson recording is not usable: {error}.") from None
    values = {"tenant": tenant, "name": body.name, "user": body.user, "source": body.source,
              "since": selector.since, "until": selector.until, "note": body.note,
              "created_by": identity.name, "created_at": time.time()}
    row = await services.history.write(lambda c: store.save_lesson(c, values))
    await record_audit(services.history, identity, "loadtest.lesson.save", target=body.name,
                       tenant=tenant, details={"user": body.user, "calls": len(steps)})
    return {**row, "calls": len(steps)}


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=200)
    service_s: float = Field(ge=0, le=3600, description="The provider's time for this call.")
    gap_s: float = Field(default=0.0, ge=0, le=3600, description="Pause before it.")
    tokens: int = Field(default=0, ge=0, le=10_000_000)
    prompt: str | None = Field(default=None, max_length=20_000)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stream: bool = False


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    students: int = Field(ge=1, le=1000, description="Students arriving within the window.")
    window_s: float = Field(default=60.0, ge=0, le=3600,
                            description="They arrive evenly over this many seconds.")
    target_p95_wait_s: float = Field(default=5.0, gt=0, le=3600,
                                     description="The key plan keeps p95 queue wait under it.")
    lesson: str | None = Field(default=None, max_length=64, description="A saved recording.")
    user: str | None = Field(default=None, max_length=128)
    source: str | None = Field(default=None, max_length=16)
    since: float | str | None = None
    until: float | str | None = None
    tenant: str | None = Field(default=None, max_length=64)
    steps: list[StepBody] | None = Field(default=None, max_length=500,
                                         description="An explicit lesson instead of a recording.")
    run: bool = Field(default=False, description="Also run the replay live as a load test "
                                                 "(admins); compare its report with the "
                                                 "prediction.")
    mode: Literal["mock", "real"] = "mock"
    cost_cap_usd: float | None = Field(default=None, gt=0)


@router.post("/replay", summary="Capacity planner: replay a lesson for N students")
async def replay(body: ReplayBody, identity: CurrentUser, services: ServicesDep,
                 loadtests: LoadTestsDep) -> dict[str, Any]:
    tenant = _planner_tenant(identity, body.tenant, services)
    try:
        if body.steps is not None:
            steps = [Step(services.providers.lookup(s.model).provider, s.model, s.service_s,
                          s.gap_s, s.tokens, s.prompt, s.max_tokens, s.stream)
                     for s in body.steps]
            selector = None
        else:
            selector = (await loadtests.lesson_selector(tenant, body.lesson) if body.lesson
                        else LessonSelector(tenant, body.user, parse_time(body.since, "since"),
                                            parse_time(body.until, "until"), body.source))
            steps = await loadtests.lesson_steps(selector)
        keys = pool_limits(services.pool.keys, tenant)
        out = predict(steps, body.students, body.window_s, keys, body.target_p95_wait_s)
    except (LessonError, SimulationError) as error:
        raise InvalidRequest(f"The lesson cannot be replayed: {error}.") from None
    out["lesson"] = {"name": body.lesson, "tenant": tenant,
                     **(selector.public() if selector else {"explicit_steps": True})}
    if body.run:
        LOADTEST_ADMIN.check(identity)
        data: dict[str, Any] = {
            "name": f"replay of lesson {body.lesson or ''}".strip(), "mode": body.mode,
            "tenant": tenant,
            "rounds": [{"users": body.students, "ramp_up_s": body.window_s, "steps": [
                {"model": c.model, "prompt": c.prompt, "max_tokens": c.max_tokens,
                 "stream": c.stream, "gap_s": c.gap_s} for c in steps_to_calls(steps)]}],
        }
        if body.cost_cap_usd is not None:
            data["cost_cap_usd"] = body.cost_cap_usd
        try:
            plan = parse_plan(data)
        except PlanError as error:
            raise plan_error(error) from None
        out["loadtest"] = await _start(plan, False, identity, services, loadtests)
    return out


# -- one run ------------------------------------------------------------------------------------


async def _run_or_404(loadtests: LoadTests, run_id: int) -> dict[str, Any]:
    found = await loadtests.get(run_id)
    if found is None:
        raise NotFound(f"There is no load test {run_id}.")
    return found


@router.get("/{run_id:int}", summary="Status, per-round progress and running figures (admins)")
async def get_loadtest(run_id: RowId, identity: LoadTestAdmin,
                       loadtests: LoadTestsDep) -> dict[str, Any]:
    return await _run_or_404(loadtests, run_id)


@router.post("/{run_id:int}/cancel", summary="Cancel a running load test; what ran is kept")
async def cancel(run_id: RowId, identity: LoadTestAdmin, services: ServicesDep,
                 loadtests: LoadTestsDep) -> dict[str, Any]:
    found = await _run_or_404(loadtests, run_id)
    if not await loadtests.cancel(run_id):
        raise Conflict(f"Load test {run_id} is not running (it is {found['status']}).")
    await record_audit(services.history, identity, "loadtest.cancel", target=str(run_id),
                       tenant=found["tenant"])
    return await _run_or_404(loadtests, run_id)


@router.get("/{run_id:int}/samples", summary="The samples of a load test (admins)")
async def samples(
    run_id: RowId, identity: LoadTestAdmin, loadtests: LoadTestsDep,
    round_idx: Annotated[int | None, Query(alias="round", ge=0, le=10_000)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Offset = 0,
) -> dict[str, Any]:
    await _run_or_404(loadtests, run_id)
    items, total = await loadtests.samples(run_id, round_idx=round_idx, limit=limit,
                                           offset=offset)
    return {"items": items, "total": total}


@router.get("/{run_id:int}/report", summary="Figures, grades and charts; or the HTML report",
            response_model=None)
async def report(
    run_id: RowId, identity: LoadTestAdmin, loadtests: LoadTestsDep,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> dict[str, Any] | HTMLResponse:
    run = await _run_or_404(loadtests, run_id)
    items, _ = await loadtests.samples(run_id)
    figures = build_report(run, run["rounds"], items)
    if format == "html":
        return HTMLResponse(report_html(figures))
    return figures
