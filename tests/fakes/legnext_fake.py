"""LegNext (Midjourney): ``POST /api/v1/diffusion`` with ``x-api-key`` and ``{"text": ...}``
(flags such as ``--ar 16:9 --v 7`` inside the prompt) creates a job; ``GET
/api/v1/job/{job_id}`` goes ``pending`` → ``processing`` (``progress``) → ``completed``
with ``output.image_url`` (the grid) and ``output.image_urls`` (four images)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.common import Fake, base_of, png, request_id

JOBS: dict[str, dict[str, Any]] = {}


def error_shape(status: int, kind: str, message: str, **_: Any) -> dict[str, Any]:
    return {"code": status, "message": message, "data": None}


fake = Fake("legnext", error_shape, lambda r: r.headers.get("x-api-key"))


@fake.route("/api/v1/diffusion", ["POST"])
async def diffusion(request: Request) -> Response:
    body = await request.json()
    if not body.get("text"):
        return fake.fail(400, "invalid", "text is required")
    job_id = request_id("")[:32]
    JOBS[job_id] = {"polls": 0, "text": body["text"]}
    return JSONResponse({"job_id": job_id, "model": "midjourney", "task_type": "diffusion",
                         "status": "pending", "input": {"text": body["text"]}, "output": None,
                         "meta": {"created_at": "2026-11-21T00:00:00Z"}})


@fake.route("/api/v1/job/{job_id}", ["GET"])
async def job(request: Request) -> Response:
    found = JOBS.get(request.path_params["job_id"])
    if found is None:
        return fake.fail(404, "missing", "job not found")
    found["polls"] += 1
    steps = int(fake.state.settings.get("polls", 4))
    base = base_of(request)
    job_id = request.path_params["job_id"]
    answer: dict[str, Any] = {"job_id": job_id, "model": "midjourney", "task_type": "diffusion",
                              "input": {"text": found["text"]}, "output": None, "error": None}
    if "[[fail]]" in found["text"]:
        answer.update(status="failed", error={"code": 10001, "message": "Banned prompt"})
    elif found["polls"] >= steps:
        answer.update(status="completed", progress=100, output={
            "image_url": f"{base}/files/{job_id}/grid.png",
            "image_urls": [f"{base}/files/{job_id}/{i}.png" for i in range(4)]})
    elif found["polls"] == 1:
        answer.update(status="pending", progress=0)
    else:
        answer.update(status="processing", progress=round(100 * found["polls"] / steps))
    return JSONResponse(answer)


@fake.route("/files/{job_id}/{name}", ["GET"], auth=False)
async def files(request: Request) -> Response:
    shade = 40 * (1 + "0123".find(request.path_params["name"][0]))
    return Response(png(color=(shade, 200, 100)), media_type="image/png")


app = fake.app()
