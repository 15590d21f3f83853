"""Kling: ``Authorization: Bearer <JWT>`` (HS256, iss = access key, signed with the secret
key, checked for ``exp``/``nbf``); ``POST /v1/videos/text2video`` and ``image2video``
create a task, ``GET /v1/videos/{kind}/{task_id}`` reports ``submitted`` → ``processing``
→ ``succeed`` with ``task_result.videos[].url``; the video is downloadable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.common import Fake, base_of, request_id

SECRETS = {"ak-test": "sk-test", "ak-second": "sk-second", "ak-limited": "sk-limited"}
CODES = {"auth": 1002, "rate_limit": 1302, "server": 5000, "invalid": 1201}
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free" * 4


def error_shape(status: int, kind: str, message: str, **_: Any) -> dict[str, Any]:
    return {"code": CODES.get(kind, 5000), "message": message, "request_id": request_id("")}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def access_key(request: Request) -> str | None:
    """The access key of a valid token; the JWT is checked the way Kling checks it."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or token.count(".") != 2:
        return None
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    secret = SECRETS.get(claims.get("iss", ""))
    if secret is None or json.loads(_unb64(header)).get("alg") != "HS256":
        return "bad"
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    now = time.time()
    if not hmac.compare_digest(expected, _unb64(signature)):
        return "bad"
    if not (claims["nbf"] <= now < claims["exp"]):
        return "bad"
    return str(claims["iss"]).replace("ak-", "key-")


fake = Fake("kling", error_shape, access_key)
TASKS: dict[str, dict[str, Any]] = {}


def _created(task_id: str) -> Response:
    now = int(time.time() * 1000)
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": request_id(""),
                         "data": {"task_id": task_id, "task_status": "submitted",
                                  "created_at": now, "updated_at": now}})


@fake.route("/v1/videos/{endpoint}", ["POST"])
async def create(request: Request) -> Response:
    endpoint = request.path_params["endpoint"]
    body = await request.json()
    if endpoint not in ("text2video", "image2video"):
        return fake.fail(404, "missing", "Invalid method")
    if endpoint == "image2video" and not body.get("image"):
        return fake.fail(400, "invalid", "image is required")
    if not body.get("model_name") or (endpoint == "text2video" and not body.get("prompt")):
        return fake.fail(400, "invalid", "model_name and prompt are required")
    if "[[unsafe]]" in body.get("prompt", ""):
        return JSONResponse({"code": 1301, "message": "Failure to pass the risk control system",
                             "request_id": request_id("")}, 400)
    task_id = "kt_" + request_id("")[:16]
    TASKS[task_id] = {"polls": 0, "body": body, "endpoint": endpoint}
    return _created(task_id)


@fake.route("/v1/videos/{endpoint}/{task_id}", ["GET"])
async def status(request: Request) -> Response:
    task = TASKS.get(request.path_params["task_id"])
    if task is None:
        return fake.fail(404, "missing", "task not found")
    task["polls"] += 1
    needed = int(fake.state.settings.get("polls", 3))
    state = "submitted" if task["polls"] == 1 else "processing"
    data: dict[str, Any] = {"task_id": request.path_params["task_id"], "task_status": state,
                            "task_status_msg": "", "created_at": 0, "updated_at": 0}
    if task["polls"] >= needed:
        base = base_of(request)
        duration = str(task["body"].get("duration", "5"))
        data.update(task_status="succeed", task_result={"videos": [{
            "id": "v1", "url": f"{base}/files/{request.path_params['task_id']}.mp4",
            "duration": duration}]})
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": request_id(""),
                         "data": data})


@fake.route("/files/{name}", ["GET"], auth=False)
async def download(request: Request) -> Response:
    return Response(FAKE_MP4, media_type="video/mp4")


app = fake.app()
