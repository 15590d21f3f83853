"""LegNext: Midjourney ``imagine`` as an asynchronous task.

``POST /api/v1/diffusion`` with ``x-api-key`` and ``{"text": "<prompt> --ar 16:9 --v 7"}``
creates a job; ``GET /api/v1/job/{job_id}`` reports ``pending`` / ``staged`` /
``processing`` (with ``progress``) / ``completed`` (``output.image_url``, the 2x2
grid, and ``output.image_urls``, the four images) or ``failed``.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.keypool import ProviderKey
from gateway.providers.base import JobSpec, TaskState
from gateway.providers.http import Upstream, Vendor, VendorError

STATES = {"pending": "queued", "staged": "queued", "processing": "running",
          "completed": "succeeded", "failed": "failed"}
FLAGS = {  # params → Midjourney prompt flags
    "aspect_ratio": "--ar", "version": "--v", "stylize": "--s", "chaos": "--c",
    "quality": "--q", "seed": "--seed", "weird": "--w", "no": "--no", "style": "--style",
    "niji": "--niji", "stop": "--stop",
}
BOOLEAN_FLAGS = {"tile": "--tile", "raw": "--raw"}


def midjourney_prompt(prompt: str, params: dict[str, Any]) -> str:
    """The prompt with ``--ar``, ``--v``, ``--s`` … appended, unless it already has them."""
    text = prompt.strip()
    for name, flag in FLAGS.items():
        value = params.get(name)
        if value is None or value == "" or re.search(rf"(^|\s){re.escape(flag)}(\s|$)", text):
            continue
        text += f" {flag} {value}"
    for name, flag in BOOLEAN_FLAGS.items():
        if params.get(name) and flag not in text:
            text += f" {flag}"
    return text


def parse_error(status: int, body: Any) -> VendorError:
    if isinstance(body, dict):
        inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
        message = inner.get("message") or inner.get("raw_message") or inner.get("detail") or ""
        return VendorError(str(message), str(inner.get("code", "")) or None)
    return VendorError(str(body or f"HTTP {status}")[:300])


class LegNextProvider:
    id = "legnext"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("legnext", "https://api.legnext.ai", client, parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        return {"x-api-key": (key.secret if key else None) or ""}

    def _url(self, key: ProviderKey | None, path: str) -> str:
        return self.http.base(key.base_url if key else None) + path

    async def submit(self, key: ProviderKey | None, spec: JobSpec, timeout: float) -> str:
        body = {"text": midjourney_prompt(spec.prompt, spec.params)}
        response = await self.http.send("POST", self._url(key, "/api/v1/diffusion"),
                                        headers=self._headers(key), json=body, timeout=timeout)
        return str(response.json()["job_id"])

    async def poll(self, key: ProviderKey | None, task_id: str, spec: JobSpec,
                   timeout: float) -> TaskState:
        response = await self.http.send("GET", self._url(key, f"/api/v1/job/{task_id}"),
                                         headers=self._headers(key), timeout=timeout)
        data = response.json()
        status = STATES.get(str(data.get("status", "")), "running")
        progress = data.get("progress")
        output = data.get("output") or {}
        urls = [u for u in [output.get("image_url"), *(output.get("image_urls") or [])] if u]
        error = data.get("error") or {}
        return TaskState(
            status, float(progress) / 100 if isinstance(progress, int | float) else None, urls,
            (error.get("message") or "the task failed") if status == "failed" else None,
        )

    async def download(self, key: ProviderKey | None, url: str,
                       timeout: float) -> tuple[bytes, str]:
        response = await self.http.download(url, timeout=timeout)
        return response.content, response.headers.get("content-type", "image/png").split(";")[0]

    async def aclose(self) -> None:
        return None
