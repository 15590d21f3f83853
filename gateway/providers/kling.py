"""Kling: text to video and image to video (start and end frames), as asynchronous tasks.

Requests carry ``Authorization: Bearer <JWT>``, an HS256 token signed with the
secret key whose issuer is the access key, valid for 30 minutes. A task is
created (``task_id``), polled (``submitted`` → ``processing`` → ``succeed`` or
``failed``) and its video downloaded from ``task_result.videos[0].url``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from gateway.errors import InvalidRequest
from gateway.keypool import ProviderKey
from gateway.providers.base import JobSpec, TaskState
from gateway.providers.http import Upstream, Vendor, VendorError

STATES = {"submitted": "queued", "processing": "running", "succeed": "succeeded",
          "failed": "failed"}
PASSED = ("negative_prompt", "cfg_scale", "mode", "aspect_ratio", "camera_control")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_token(access_key: str, secret_key: str, now: float | None = None,
              lifetime: int = 1800) -> str:
    """An HS256 JWT as Kling expects: iss = access key, exp = now + 30 min, nbf = now - 5 s."""
    issued = int(now if now is not None else time.time())
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps({"iss": access_key, "exp": issued + lifetime, "nbf": issued - 5},
                                 separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret_key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def parse_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict):
        code = str(body.get("code", "")) or None
        if code in ("1300", "1301"):  # Kling's platform and content-security policies
            code = "content_policy"
        return VendorError(str(body.get("message", "")), code)
    return VendorError(str(body or f"HTTP {status}")[:300])


def _image(value: Any, field: str) -> str:
    """Kling takes an image as a URL or as bare base64 (no data: prefix)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"The parameter '{field}' must be an image URL or base64 data.",
                             param=f"params.{field}")
    if value.startswith("data:"):
        return value.partition(",")[2]
    return value


class KlingProvider:
    id = "kling"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("kling", "https://api-singapore.klingai.com", client, parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        if key is None or not key.secret or not key.secret2:
            return {}
        return {"Authorization": f"Bearer {jwt_token(key.secret, key.secret2)}"}

    def _url(self, key: ProviderKey | None, path: str) -> str:
        return self.http.base(key.base_url if key else None) + path

    async def submit(self, key: ProviderKey | None, spec: JobSpec, timeout: float) -> str:
        params = spec.params
        body: dict[str, Any] = {"model_name": spec.model.vendor_model, "prompt": spec.prompt}
        body.update({k: params[k] for k in PASSED if params.get(k) is not None})
        body["duration"] = str(int(params.get("duration") or 5))
        endpoint = "text2video"
        start = params.get("image") or params.get("start_frame")
        if start:
            endpoint = "image2video"
            body["image"] = _image(start, "image")
            end = params.get("image_tail") or params.get("end_frame")
            if end:
                body["image_tail"] = _image(end, "image_tail")
        response = await self.http.send("POST", self._url(key, f"/v1/videos/{endpoint}"),
                                        headers=self._headers(key), json=body, timeout=timeout)
        data = response.json()
        return f"{endpoint}/{data['data']['task_id']}"

    async def poll(self, key: ProviderKey | None, task_id: str, spec: JobSpec,
                   timeout: float) -> TaskState:
        response = await self.http.send("GET", self._url(key, f"/v1/videos/{task_id}"),
                                         headers=self._headers(key), timeout=timeout)
        data = response.json().get("data") or {}
        status = STATES.get(data.get("task_status", ""), "running")
        videos = (data.get("task_result") or {}).get("videos") or []
        seconds = None
        if videos and videos[0].get("duration"):
            seconds = float(videos[0]["duration"])
        return TaskState(status, None, [v["url"] for v in videos if v.get("url")],
                         data.get("task_status_msg") if status == "failed" else None, seconds)

    async def download(self, key: ProviderKey | None, url: str,
                       timeout: float) -> tuple[bytes, str]:
        response = await self.http.download(url, timeout=timeout)
        return response.content, response.headers.get("content-type", "video/mp4").split(";")[0]

    async def aclose(self) -> None:
        return None
