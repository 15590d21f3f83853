"""Asynchronous media jobs: video (Kling, mock), Midjourney-style images (LegNext, mock) and
music (mock; no Suno API with a documented wire format exists, see docs/providers.md).

``create`` checks the call like any other, writes the job and its history run,
and returns at once; a background task then holds the admission ticket and the
key lease for the whole job: create the vendor's task (with retries and
failover), poll it every ``job_poll_seconds`` (progress never goes backwards),
download the results as artifacts, meter (per second of video, per task), and
finish the job and the run. Jobs a stopped gateway leaves behind are failed at
the next start.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from contextlib import AsyncExitStack
from typing import Any

from gateway.auth import Identity
from gateway.config.settings import Settings
from gateway.edge.schemas import JobRequest, validate
from gateway.errors import (
    ClassroomError,
    InvalidRequest,
    NotFound,
    ProviderError,
    ProviderTimeout,
)
from gateway.history.artifacts import ArtifactStore, NewArtifact, artifact_public
from gateway.history.job_store import JobStore, job_public
from gateway.keypool import ProviderKey
from gateway.policy.admission import CallEstimate
from gateway.pricing import task_cost, video_cost
from gateway.providers.base import JobSpec, TaskState
from gateway.providers.http import LABELS
from gateway.services.calls import Caller, Calls, Metered

log = logging.getLogger("gateway.services.provider_jobs")
HISTORY_KIND = {"video": "video", "midjourney": "image", "music": "music"}
MUSIC_SECONDS = (5, 30)
ARTIFACT_KIND = {"video": "video", "midjourney": "image", "music": "audio"}


def check_params(request: JobRequest) -> dict[str, Any]:
    params = dict(request.params)
    if request.kind == "video":
        duration = params.get("duration", 5)
        if str(duration) not in ("5", "10"):
            raise InvalidRequest("The parameter 'duration' must be 5 or 10 (seconds).",
                                 param="params.duration")
        params["duration"] = int(duration)
        if params.setdefault("mode", "std") not in ("std", "pro"):
            raise InvalidRequest("The parameter 'mode' must be 'std' or 'pro'.",
                                 param="params.mode")
    if request.kind == "music":
        return check_music_params(params)
    aspect = params.get("aspect_ratio")
    if aspect is not None and (not isinstance(aspect, str) or ":" not in aspect):
        raise InvalidRequest("The parameter 'aspect_ratio' looks like '16:9'.",
                             param="params.aspect_ratio")
    return params


def check_music_params(params: dict[str, Any]) -> dict[str, Any]:
    """Suno's knobs, as its web app names them: a style, a title, instrumental or not,
    and (the mock's) length in seconds."""
    unknown = sorted(set(params) - {"duration", "style", "title", "instrumental"})
    if unknown:
        raise InvalidRequest(f"Music jobs do not take {unknown}; they take duration, style, "
                             "title and instrumental.", param="params")
    duration = params.get("duration", 8)
    low, high = MUSIC_SECONDS
    if not isinstance(duration, int) or isinstance(duration, bool) or not low <= duration <= high:
        raise InvalidRequest(f"The parameter 'duration' must be a whole number of seconds from "
                             f"{low} to {high}.", param="params.duration")
    for name in ("style", "title"):
        value = params.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 200):
            raise InvalidRequest(f"The parameter '{name}' is a short text (200 characters at "
                                 "most).", param=f"params.{name}")
    if not isinstance(params.get("instrumental", False), bool):
        raise InvalidRequest("The parameter 'instrumental' is true or false.",
                             param="params.instrumental")
    return {**params, "duration": duration}


def estimated_progress(state: TaskState, elapsed: float, spec: JobSpec) -> float:
    """Kling reports no percentage: estimate from the state and the time a job usually takes."""
    if state.progress is not None:
        return state.progress
    if state.status == "queued":
        return 0.02
    expected = 90.0 * (int(spec.params.get("duration") or 5) / 5)
    return 0.05 + 0.9 * min(1.0, elapsed / expected)


class JobService:
    def __init__(self, calls: Calls, artifacts: ArtifactStore, store: JobStore,
                 settings: Settings) -> None:
        self.calls = calls
        self.artifacts = artifacts
        self.store = store
        self.settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        failed = await self.store.fail_unfinished()
        if failed:
            log.warning("%d job(s) left running by a previous gateway marked failed", failed)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the API -----------------------------------------------------------------------------------

    async def create(self, identity: Identity, body: dict[str, Any], *, source: str,
                     base_url: str) -> dict[str, Any]:
        caller = Caller(identity, source, "classroom")
        kind = str(body.get("kind")) if body.get("kind") in HISTORY_KIND else "video"
        prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else None
        try:
            request: JobRequest = validate(body, JobRequest)
            params = check_params(request)
            model = self.calls.resolve(caller, request.model, (request.kind,))
            spec = JobSpec(request.kind, model, request.prompt, params)
            # The call is admitted in the background; a refusal is answered now.
            await self.calls.admission.precheck(identity, model, self._estimate(spec))
        except ClassroomError as error:
            name = body.get("model") if isinstance(body.get("model"), str) else None
            await self.calls.refuse(caller, error, kind=HISTORY_KIND[kind], model=name,
                                    request_text=prompt)
            raise
        run_id = await self.calls.start(caller, model, HISTORY_KIND[request.kind],
                                        request_text=request.prompt)
        row = await self.store.create({
            "id": "job_" + secrets.token_hex(12), "user": identity.name,
            "tenant": identity.tenant, "role": identity.role, "source": source,
            "kind": request.kind, "provider": model.provider, "model": model.id,
            "prompt": request.prompt, "params": params, "run_id": run_id,
        })
        task = asyncio.get_running_loop().create_task(self._run(row["id"], caller, spec, run_id))
        self._tasks[row["id"]] = task
        task.add_done_callback(lambda _: self._tasks.pop(row["id"], None))
        return await self.get(identity, row["id"], base_url)

    async def get(self, identity: Identity, job_id: str, base_url: str) -> dict[str, Any]:
        row = await self.store.get(job_id)
        if row is None or not (row["user"] == identity.name or identity.can_teach(row["tenant"])):
            raise NotFound(f"There is no job {job_id} of yours.")
        found = await self.artifacts.find(job_id=job_id, oldest_first=True)
        return job_public(row, [artifact_public(a, base_url) for a in found])

    async def list_jobs(self, identity: Identity, base_url: str, *, kind: str | None,
                   status: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self.store.find(user=identity.name, kind=kind, status=status, limit=limit,
                                     offset=offset)
        out = []
        for row in rows:
            found = await self.artifacts.find(job_id=row["id"], oldest_first=True)
            out.append(job_public(row, [artifact_public(a, base_url) for a in found]))
        return out

    # -- the background task -------------------------------------------------------------------

    def _estimate(self, spec: JobSpec) -> CallEstimate:
        if spec.kind == "video":
            cost = video_cost(spec.model, seconds=float(spec.params.get("duration") or 5),
                              mode=spec.params.get("mode"))
        else:
            cost = task_cost(spec.model)
        return CallEstimate(0, 0, cost.micro_usd)

    def _metered(self, spec: JobSpec, state: TaskState, files: int) -> Metered:
        if spec.kind == "video":
            seconds = state.seconds or float(spec.params.get("duration") or 5)
            return Metered(video_cost(spec.model, seconds=seconds, mode=spec.params.get("mode")),
                           text=f"[{seconds:g} s video]", units={"seconds": seconds},
                           priced_as=spec.model.priced_as)
        if spec.kind == "music":
            seconds = float(state.seconds or spec.params.get("duration") or 8)
            return Metered(task_cost(spec.model), text=f"[{seconds:g} s of music]",
                           units={"tasks": 1, "seconds": seconds},
                           priced_as=spec.model.priced_as)
        return Metered(task_cost(spec.model), text=f"[Midjourney grid and {files - 1} images]",
                       units={"tasks": 1, "images": files}, priced_as=spec.model.priced_as)

    async def _run(self, job_id: str, caller: Caller, spec: JobSpec, run_id: int) -> None:
        adapter: Any = self.calls.registry.adapter(spec.model.provider)
        timeout = self.settings.chat_timeout_seconds
        key_name: str | None = None
        estimate = self._estimate(spec)

        async def submit(key: ProviderKey | None, stack: AsyncExitStack) -> str:
            task_id: str = await adapter.submit(key, spec, timeout)
            return task_id

        try:
            async with self.calls.admission.admit(caller.identity, spec.model, estimate) as ticket:
                async with self.calls.attempts.run(spec.model.provider, caller.who(),
                                                   submit) as outcome:
                    key_name = outcome.key_name
                    await self.store.update(job_id, status="running", progress=0.01,
                                            vendor_task_id=outcome.result, key_name=key_name)
                    state = await self._poll(job_id, adapter, outcome.lease, outcome.result, spec)
                    files = 0
                    for url in state.urls or []:
                        data, mime = await adapter.download(
                            outcome.lease.key, url, self.settings.video_timeout_seconds)
                        await self.artifacts.save(NewArtifact(
                            caller.identity.name, caller.identity.tenant, mime, data,
                            spec.model.id, spec.prompt, run_id, job_id,
                            meta={"index": files, "params": spec.params, "source_url": url
                                  if not url.startswith("mock://") else None},
                            kind=ARTIFACT_KIND.get(spec.kind, "image"),
                        ))
                        files += 1
                    if not files:
                        raise ProviderError(f"{LABELS[spec.model.provider]} finished the job "
                                            "without a result to download.")
                    metered = self._metered(spec, state, files)
                ticket.settle(metered.cost.micro_usd, 0)
            await self.store.update(job_id, status="succeeded", progress=1.0)
            await self.calls.succeed(run_id, metered, key_name=key_name)
        except ClassroomError as error:
            await self._fail(job_id, run_id, error, key_name)
        except asyncio.CancelledError:
            stopped = ProviderError("The gateway stopped while this job was running.")
            await asyncio.shield(self._fail(job_id, run_id, stopped, key_name))
            raise
        except Exception as exc:
            log.exception("job %s failed", job_id)
            await self._fail(job_id, run_id, ProviderError(
                f"The job at {LABELS.get(spec.model.provider, spec.model.provider)} failed "
                f"unexpectedly ({type(exc).__name__})."), key_name)

    async def _fail(self, job_id: str, run_id: int, error: ClassroomError,
                    key_name: str | None) -> None:
        await self.store.update(job_id, status="failed", error_code=error.code,
                                error_message=error.message)
        await self.calls.fail(run_id, error, key_name=key_name)

    async def _poll(self, job_id: str, adapter: Any, lease: Any, task_id: str,
                    spec: JobSpec) -> TaskState:
        started = time.monotonic()
        deadline = started + self.settings.video_timeout_seconds
        progress = 0.01
        failures = 0
        while True:
            try:
                state: TaskState = await adapter.poll(lease.key, task_id, spec,
                                                      self.settings.chat_timeout_seconds)
                failures = 0
            except ClassroomError as error:
                # A poll that fails now and then is no reason to lose a paid-for video.
                failures += 1
                if not error.retryable or failures >= 5:
                    raise
                state = TaskState("running")
            lease.renew()
            if state.status == "succeeded":
                return state
            if state.status == "failed":
                raise ProviderError(f"{LABELS.get(spec.model.provider)} could not make it: "
                                    f"{state.error or 'no reason given'}.")
            estimate = estimated_progress(state, time.monotonic() - started, spec)
            if min(estimate, 0.95) > progress:
                progress = round(min(estimate, 0.95), 3)
                await self.store.update(job_id, progress=progress)
            if time.monotonic() > deadline:
                raise ProviderTimeout(
                    f"The job took longer than {self.settings.video_timeout_seconds:.0f} s.")
            await asyncio.sleep(self.settings.job_poll_seconds)
