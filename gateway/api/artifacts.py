"""Artifacts: the images, audio and video the classroom made, served to their owner,
their school's teachers and admins, and to nobody else (who get 404, as if it did not
exist)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.api.deps import CurrentUser, Offset, ServicesDep
from gateway.errors import NotFound
from gateway.history.artifacts import artifact_public

router = APIRouter(prefix="/api/artifacts", tags=["Artifacts"])


@router.get("", summary="Your gallery, newest first")
async def gallery(
    request: Request, identity: CurrentUser, services: ServicesDep,
    kind: Literal["image", "audio", "video"] | None = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    rows = await services.artifacts.find(user=identity.name, kind=kind, session_id=session_id,
                                         limit=limit, offset=offset)
    base = str(request.base_url)
    return {"items": [artifact_public(r, base) for r in rows], "limit": limit, "offset": offset}


@router.get("/{artifact_id}", response_class=Response, summary="An artifact's bytes")
async def artifact(artifact_id: str, identity: CurrentUser, services: ServicesDep) -> Response:
    row = await services.artifacts.get(artifact_id)
    if row is None or not (row["user"] == identity.name or identity.can_teach(row["tenant"])):
        raise NotFound(f"There is no artifact {artifact_id} you may see.")
    try:
        data = await services.artifacts.read_bytes(row)
    except FileNotFoundError:
        raise NotFound(f"The file of artifact {artifact_id} is gone (purged).") from None
    extension = row["mime"].split("/")[-1].replace("mpeg", "mp3")
    return Response(data, media_type=row["mime"], headers={
        "Cache-Control": "private, max-age=86400",
        "Content-Disposition": f'inline; filename="{artifact_id}.{extension}"',
    })
