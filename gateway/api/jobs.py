"""Asynchronous media jobs: video (kling-*, mock/video), Midjourney-style images
(midjourney, mock/midjourney) and music (mock/music). Create, then poll for status and
progress; the results are artifacts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from gateway.api.deps import CurrentUser, Offset, ServicesDep, call_source
from gateway.edge.schemas import JobRequest, load_object, openapi_body
from gateway.errors import InvalidRequest

router = APIRouter(prefix="/api/jobs", tags=["Jobs"])


@router.post("", status_code=202, summary="Start a video or Midjourney-style job",
             openapi_extra=openapi_body(JobRequest))
async def create_job(request: Request, identity: CurrentUser,
                     services: ServicesDep) -> dict[str, Any]:
    from gateway.services.calls import Caller

    try:
        body = load_object(await request.body(), request.headers.get("content-type"))
    except InvalidRequest as error:
        caller = Caller(identity, call_source(request), "classroom")
        await services.calls.refuse(caller, error, kind="video", model=None)
        raise
    return await services.jobs.create(identity, body, source=call_source(request),
                                      base_url=str(request.base_url))


@router.get("", summary="Your jobs, newest first")
async def list_jobs(
    request: Request, identity: CurrentUser, services: ServicesDep,
    kind: Literal["video", "midjourney", "music"] | None = None,
    status: Literal["queued", "running", "succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items = await services.jobs.list_jobs(identity, str(request.base_url), kind=kind,
                                          status=status, limit=limit, offset=offset)
    return {"items": items, "limit": limit, "offset": offset}


@router.get("/{job_id}", summary="One job: status, progress (0..1), error, artifacts")
async def get_job(job_id: str, request: Request, identity: CurrentUser,
                  services: ServicesDep) -> dict[str, Any]:
    return await services.jobs.get(identity, job_id, str(request.base_url))
