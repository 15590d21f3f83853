"""Pieces the media widgets share: job polling with a progress bar, artifact ids, galleries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as w

from gateway.safehtml import html

from .._client import GatewayClient
from .._exceptions import GatewayError

GALLERY_SIZE = 12


def job_artifact_ids(job: Mapping[str, Any]) -> list[str]:
    """The artifact ids a finished job produced, whichever way the job lists them."""
    found: list[str] = []
    result = job.get("result")
    candidates: list[Any] = [job.get("artifact_ids"), job.get("artifacts")]
    if isinstance(result, Mapping):
        candidates += [result.get("artifact_ids"), result.get("artifacts"),
                       result.get("artifact_id")]
    elif isinstance(result, list):
        candidates.append(result)
    for candidate in candidates:
        items = candidate if isinstance(candidate, list) else [candidate]
        for item in items:
            if isinstance(item, Mapping):
                item = item.get("id") or item.get("artifact_id")
            if isinstance(item, str) and item and item not in found:
                found.append(item)
    return found


def job_failure(job: Mapping[str, Any]) -> GatewayError:
    """The error of a failed job, as the same :class:`GatewayError` a call would raise."""
    error = job.get("error")
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
    else:
        code, message = job.get("error_code"), job.get("error_message") or error
    return GatewayError(str(message or "The job failed."), code=str(code or "provider_error"),
                        model=job.get("model"))


class JobProgress(w.VBox):
    """A progress bar and a line of text for a job the gateway runs in the background."""

    def __init__(self) -> None:
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="Progress",
                                   bar_style="info", layout=w.Layout(width="420px"))
        self.label = w.HTML()
        super().__init__([self.bar, self.label])
        self.layout.display = "none"
        self.seen: list[tuple[str, float]] = []

    def update(self, job: Mapping[str, Any]) -> None:
        status = str(job.get("status") or "queued")
        progress = float(job.get("progress") or 0.0)
        self.seen.append((status, progress))
        self.layout.display = None
        self.bar.value = 1.0 if status == "succeeded" else max(0.0, min(1.0, progress))
        self.bar.bar_style = {"succeeded": "success", "failed": "danger"}.get(status, "info")
        self.label.value = html('<span style="opacity:.7">Job {}: {} ({:.0%})</span>',
                                job.get("id", ""), status, self.bar.value)

    def run(self, client: GatewayClient, job: Mapping[str, Any], timeout: float = 900
            ) -> dict[str, Any]:
        """Poll the job until it ends; raise its error if it failed."""
        self.seen = []
        self.update(job)
        finished = client.wait_job(str(job["id"]), timeout=timeout, on_progress=self.update)
        if finished.get("status") != "succeeded":
            raise job_failure(finished)
        return finished


def caption(entry: Mapping[str, Any], limit: int = 60) -> str:
    prompt = " ".join(str(entry.get("prompt") or "").split())
    if len(prompt) > limit:
        prompt = prompt[: limit - 1] + "…"
    when = str(entry.get("created_at") or "")[:16].replace("T", " ")
    return f"{entry.get('model') or ''} · {when}\n{prompt}".strip()
