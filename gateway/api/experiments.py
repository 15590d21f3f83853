"""Saved playground experiments: one prompt (system, user, parameters, model) run N times.

Each iteration is an ordinary chat call through :class:`gateway.services.chat.ChatService`
(same identity, policy, pool, metering and history row); at most ``concurrency`` of one
run are in flight at once (default 3, at most :data:`MAX_CONCURRENCY`). The run keeps its
prompt, a SHA-256 ``prompt_hash`` of it (so a repeated prompt is recognised:
``same_prompt_runs``), its status and times, and each iteration's text, tokens, latency,
status and error. The owner reopens, re-runs, compares and deletes; a teacher reads their
school's (``?user=``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from gateway.api.conversations import MAX_CONTENT, Params, Text, owner_of
from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.auth import Identity
from gateway.errors import ClassroomError, Forbidden, NotFound
from gateway.history.conversations import Owner
from gateway.history.models import playground_results, playground_runs

router = APIRouter(prefix="/api/playground/runs", tags=["Playground"])

MAX_ITERATIONS = 20
MAX_CONCURRENCY = 5


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Text = Field(min_length=1, max_length=200)
    system_prompt: Text | None = Field(default=None, max_length=MAX_CONTENT)
    user_prompt: Text = Field(min_length=1, max_length=MAX_CONTENT)
    params: Params | None = None
    iterations: int = Field(default=1, ge=1, le=MAX_ITERATIONS)
    concurrency: int = Field(default=3, ge=1, le=MAX_CONCURRENCY)


def prompt_hash(model: str, system: str | None, user: str, params: dict[str, Any]) -> str:
    canonical = json.dumps({"model": model, "system": system or "", "user": user,
                            "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _run_public(row: Any, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "user", "model", "system_prompt", "user_prompt",
                               "prompt_hash", "iterations", "status", "rerun_of",
                               "started_at", "finished_at")}
    out["params"] = json.loads(row["params"] or "{}")
    if results is not None:
        out["results"] = results
        out["summary"] = summary(results)
    return out


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == "ok"]
    latencies = [r["latency_ms"] for r in ok if r["latency_ms"] is not None]
    return {
        "ok": len(ok), "errors": len(results) - len(ok),
        "distinct_texts": len({r["text"] for r in ok}),
        "mean_latency_ms": round(sum(latencies) / len(latencies), 1) if latencies else None,
        "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in ok),
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in ok),
    }


def _find(c: Connection, owner: Owner, run_id: str, teach: Any = None) -> dict[str, Any]:
    row = c.execute(select(playground_runs).where(playground_runs.c.id == run_id)
                    ).mappings().first()
    if row is None or not ((row["user"] == owner.user and row["tenant"] == owner.tenant)
                           or (teach is not None and teach(row["tenant"]))):
        raise NotFound(f"You have no playground run with id {run_id!r}.")
    results = [dict(r) for r in c.execute(
        select(playground_results).where(playground_results.c.run_id == run_id)
        .order_by(playground_results.c.idx)).mappings()]
    for r in results:
        r.pop("run_id")
    out = _run_public(row, results)
    out["same_prompt_runs"] = [r.id for r in c.execute(
        select(playground_runs.c.id).where(
            playground_runs.c.prompt_hash == row["prompt_hash"],
            playground_runs.c.user == row["user"], playground_runs.c.tenant == row["tenant"],
            playground_runs.c.id != run_id).order_by(playground_runs.c.started_at))]
    return out


async def _execute(body: RunIn, identity: Identity, services: Any, source: str,
                   rerun_of: str | None = None) -> dict[str, Any]:
    params = body.params.model_dump(exclude_none=True) if body.params else {}
    run_id, now = f"play_{uuid.uuid4().hex[:20]}", time.time()
    row = {"id": run_id, "user": identity.name, "tenant": identity.tenant, "model": body.model,
           "system_prompt": body.system_prompt, "user_prompt": body.user_prompt,
           "params": json.dumps(params), "iterations": body.iterations, "status": "running",
           "rerun_of": rerun_of, "started_at": now, "finished_at": None,
           "prompt_hash": prompt_hash(body.model, body.system_prompt, body.user_prompt, params)}
    await services.history.write(lambda c: c.execute(insert(playground_runs).values(**row)))
    messages = ([{"role": "system", "content": body.system_prompt}]
                if body.system_prompt else []) + [{"role": "user", "content": body.user_prompt}]
    raw = json.dumps({**params, "model": body.model, "messages": messages}).encode()
    gate = asyncio.Semaphore(body.concurrency)

    async def one(idx: int) -> dict[str, Any]:
        async with gate:
            started = time.monotonic()
            result: dict[str, Any] = {"run_id": run_id, "idx": idx, "call_run_id": None}
            try:
                prepared = await services.chat.prepare(identity, raw, source=source,
                                                       content_type="application/json")
                result["call_run_id"] = prepared.run_id
                answer = json.loads(await services.chat.complete_body(prepared))
                usage = answer.get("usage") or {}
                result.update(status="ok",
                              text=(answer["choices"][0]["message"].get("content") or ""),
                              prompt_tokens=usage.get("prompt_tokens"),
                              completion_tokens=usage.get("completion_tokens"))
            except ClassroomError as error:
                result.update(status="error", error_code=error.code,
                              error_message=error.message)
            result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
            return result

    results = await asyncio.gather(*(one(i) for i in range(body.iterations)))
    ok = sum(r["status"] == "ok" for r in results)
    status = "done" if ok == len(results) else ("failed" if ok == 0 else "partial")

    def write(c: Connection) -> None:
        c.execute(insert(playground_results), list(results))
        c.execute(update(playground_runs).where(playground_runs.c.id == run_id).values(
            status=status, finished_at=time.time()))

    await services.history.write(write)
    owner = owner_of(identity)
    found: dict[str, Any] = await services.history.read(lambda c: _find(c, owner, run_id))
    return found


@router.post("", status_code=201, summary="Run a prompt N times (concurrently) and save it")
async def create_run(body: RunIn, request: Request, identity: CurrentUser,
                     services: ServicesDep) -> dict[str, Any]:
    return await _execute(body, identity, services, call_source(request))


@router.get("", summary="Your saved playground runs, newest first")
async def list_runs(
    identity: CurrentUser, services: ServicesDep,
    prompt_hash: Annotated[str | None, Query(max_length=64)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    who = identity.name
    if user is not None and user != identity.name:
        if not identity.can_teach(identity.tenant):
            raise Forbidden("Only a teacher of the school can read its students' runs.")
        who = user
    where = [playground_runs.c.user == who, playground_runs.c.tenant == identity.tenant]
    if prompt_hash is not None:
        where.append(playground_runs.c.prompt_hash == prompt_hash)
    rows = await services.history.read(lambda c: c.execute(
        select(playground_runs).where(*where).order_by(playground_runs.c.started_at.desc())
        .limit(limit)).mappings().all())
    return {"items": [_run_public(r) for r in rows]}


@router.get("/{run_id}", summary="One saved run with every iteration's result")
async def get_run(run_id: str, identity: CurrentUser, services: ServicesDep
                  ) -> dict[str, Any]:
    owner = owner_of(identity)
    found: dict[str, Any] = await services.history.read(
        lambda c: _find(c, owner, run_id, identity.can_teach))
    return found


@router.post("/{run_id}/rerun", status_code=201, summary="Run a saved prompt again")
async def rerun(run_id: str, request: Request, identity: CurrentUser, services: ServicesDep
                ) -> dict[str, Any]:
    owner = owner_of(identity)
    old = await services.history.read(lambda c: _find(c, owner, run_id))
    body = RunIn(model=old["model"], system_prompt=old["system_prompt"],
                 user_prompt=old["user_prompt"], params=Params(**old["params"]),
                 iterations=old["iterations"])
    return await _execute(body, identity, services, call_source(request), rerun_of=run_id)


@router.get("/{run_id}/compare", summary="Two saved runs side by side")
async def compare(run_id: str, identity: CurrentUser, services: ServicesDep,
                  other: Annotated[str, Query(alias="with", max_length=40)]) -> dict[str, Any]:
    owner, teach = owner_of(identity), identity.can_teach
    left = await services.history.read(lambda c: _find(c, owner, run_id, teach))
    right = await services.history.read(lambda c: _find(c, owner, other, teach))
    return {
        "same_prompt": left["prompt_hash"] == right["prompt_hash"],
        "runs": [{k: r[k] for k in ("id", "model", "prompt_hash", "status", "summary")}
                 for r in (left, right)],
        "texts": [[x["text"] for x in r["results"]] for r in (left, right)],
    }


@router.delete("/{run_id}", status_code=204, summary="Delete a saved run")
async def delete_run(run_id: str, identity: CurrentUser, services: ServicesDep) -> Response:
    owner = owner_of(identity)
    await services.history.read(lambda c: _find(c, owner, run_id))

    def write(c: Connection) -> None:
        c.execute(delete(playground_results).where(playground_results.c.run_id == run_id))
        c.execute(delete(playground_runs).where(playground_runs.c.id == run_id,
                                                playground_runs.c.user == owner.user))

    await services.history.write(write)
    return Response(status_code=204)
