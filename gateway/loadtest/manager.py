"""The load tests of one gateway: check and start plans, watch, cancel, read back.

One :class:`LoadTests` per app. Live runs are tasks on the gateway's event loop;
finished ones are read from the history database. A run recorded as running
that no task of this process drives was stopped by a gateway restart and is
marked ``interrupted`` the first time the load tests are used.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from gateway.auth import Identity
from gateway.config.tenants import Tenant
from gateway.errors import ClassroomError
from gateway.history import HistoryStore
from gateway.loadtest import store
from gateway.loadtest.lessons import (
    LessonError,
    LessonSelector,
    select_calls,
    steps_from_calls,
    steps_to_calls,
)
from gateway.loadtest.plans import Call, LoadPlan, PlanError, plan_to_dict, with_lesson_steps
from gateway.loadtest.runner import Chat, LoadTestRun, estimate, round_rows
from gateway.loadtest.simulate import Step
from gateway.loadtest.stats import figures
from gateway.policy import check_feature
from gateway.pricing import ModelInfo

Lookup = Callable[[str], ModelInfo]
Available = Callable[[str, str], bool]


def check_models(plan: LoadPlan, lookup: Lookup, tenant: Tenant,
                 available: Available) -> dict[str, ModelInfo]:
    """Every model of the plan, resolved; :class:`PlanError` names the round that cannot run."""
    found: dict[str, ModelInfo] = {}
    for i, spec in enumerate(plan.rounds):
        if spec.is_lesson:
            where = [(f"rounds[{i}].lesson" if spec.lesson else f"rounds[{i}].steps[{j}].model",
                      c.model) for j, c in enumerate(spec.steps)]
        else:
            where = [(f"rounds[{i}].model", spec.model or "")]
        for path, name in where:
            try:
                info = lookup(name)
            except ClassroomError as error:
                raise PlanError(error.message, path) from None
            if info.kind != "chat":
                raise PlanError(f"{name} is a {info.kind} model; load tests make chat calls",
                                path)
            if plan.mode == "mock" and info.provider != "mock":
                raise PlanError(f"{name} is served by {info.provider}: mock mode uses only mock "
                                "models (mock/echo, mock/lorem); real mode calls providers", path)
            if plan.mode == "real" and not info.priced:
                raise PlanError(f"{name} has no price in the catalog, so no cost cap could be "
                                "kept", path)
            if spec.provider is not None and spec.provider != info.provider:
                raise PlanError(f"{name} is served by {info.provider}, not {spec.provider}",
                                f"rounds[{i}].provider")
            if not tenant.allows_model(name):
                raise PlanError(f"the school {tenant.tenant_id} does not allow {name}", path)
            try:
                check_feature(tenant, info.kind)
            except ClassroomError as error:
                raise PlanError(error.message, path) from None
            if not available(info.provider, tenant.tenant_id):
                raise PlanError(f"no {info.provider} key serves the school {tenant.tenant_id}",
                                path)
            found[name] = info
    return found


class LoadTests:
    def __init__(
        self, chat: Chat, history: HistoryStore, lookup: Lookup, available: Available,
        tenants: dict[str, Tenant], settings: dict[str, Any] | None = None,
    ) -> None:
        self.chat = chat
        self.history = history
        self.lookup = lookup
        self.available = available
        self.tenants = tenants
        self.settings = settings or {}
        self.live: dict[int, LoadTestRun] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._ready = False

    async def ready(self) -> None:
        """Mark runs left running by an earlier gateway process as interrupted (once)."""
        if self._ready:
            return
        self._ready = True
        live = list(self.live)
        await self.history.write(lambda c: store.mark_interrupted(c, live))

    # -- lessons ---------------------------------------------------------------------------

    async def lesson_selector(self, tenant: str, name: str) -> LessonSelector:
        row = await self.history.read(lambda c: store.lesson_row(c, tenant, name))
        if row is None:
            raise LessonError(f"no lesson recording called {name!r} in the school {tenant}; "
                              "save one with POST /api/loadtests/lessons")
        return LessonSelector(tenant=tenant, user=row["user"], since=row["since"],
                              until=row["until"], source=row["source"])

    async def lesson_steps(self, selector: LessonSelector) -> list[Step]:
        calls = await self.history.read(lambda c: select_calls(c, selector))
        if not calls:
            raise LessonError("the selection holds no successful recorded calls")
        return steps_from_calls(calls)

    # -- starting ----------------------------------------------------------------------------

    async def check(self, plan: LoadPlan, identity: Identity) -> tuple[LoadPlan, str,
                                                                        dict[str, ModelInfo]]:
        """The plan with its lessons resolved, the school it runs in, and its models."""
        tenant_id = plan.tenant or identity.tenant
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise PlanError(f"there is no school {tenant_id!r}", "tenant")
        resolved: dict[str, list[Call]] = {}
        for i, spec in enumerate(plan.rounds):
            if spec.lesson is not None and not spec.steps and spec.lesson not in resolved:
                try:
                    selector = await self.lesson_selector(tenant_id, spec.lesson)
                    resolved[spec.lesson] = steps_to_calls(await self.lesson_steps(selector))
                except LessonError as error:
                    raise PlanError(str(error), f"rounds[{i}].lesson") from None
        if resolved:
            plan = with_lesson_steps(plan, resolved.__getitem__)
        return plan, tenant_id, check_models(plan, self.lookup, tenant, self.available)

    def estimate(self, plan: LoadPlan, models: dict[str, ModelInfo]) -> dict[str, Any]:
        return estimate(plan, models)

    async def start(self, plan: LoadPlan, identity: Identity, tenant: str,
                    models: dict[str, ModelInfo]) -> LoadTestRun:
        await self.ready()
        guess = estimate(plan, models)
        cap = plan.cost_cap_usd
        values = {
            "name": plan.name, "mode": plan.mode, "status": "running",
            "created_by": identity.name, "tenant": tenant,
            "plan": json.dumps(plan_to_dict(plan), sort_keys=True),
            "cost_cap_micro_usd": None if cap is None else round(cap * 1_000_000),
            "estimate_micro_usd": guess["worst_case_micro_usd"], "spent_micro_usd": 0,
            "requests_planned": plan.total_requests, "requests_done": 0,
            "settings": json.dumps(self.settings, sort_keys=True), "created_at": time.time(),
        }
        rows = round_rows(plan.expand())
        run_id = await self.history.write(lambda c: store.create_run(c, values, rows))
        run = LoadTestRun(run_id, plan, tenant, models, self.chat, self.history,
                          created_by=identity.name)
        self.live[run_id] = run
        task = asyncio.get_running_loop().create_task(run.run(), name=f"loadtest-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._ended(run_id))
        return run

    def _ended(self, run_id: int) -> None:
        self._tasks.pop(run_id, None)
        self.live.pop(run_id, None)

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, run_id: int) -> dict[str, Any] | None:
        """A run: its row, and its rounds' progress and running figures."""
        await self.ready()
        live = self.live.get(run_id)
        row = await self.history.read(lambda c: store.run_row(c, run_id))
        if row is None:
            return None
        if live is not None:
            row.update(live.public())
            return row
        samples, _ = await self.samples(run_id)
        rounds = await self.history.read(lambda c: store.round_rows(c, run_id))
        for r in rounds:
            r["figures"] = figures([s for s in samples if s["round_idx"] == r["idx"]])
        row["rounds"] = rounds
        return row

    async def listing(self, *, limit: int = 50,
                      offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        await self.ready()
        items, total = await self.history.read(
            lambda c: store.list_runs(c, limit=limit, offset=offset))
        for item in items:
            live = self.live.get(item["id"])
            if live is not None:
                item.update(status=live.status, spent_usd=live.spent_usd,
                            requests_done=sum(r.done for r in live.rounds))
        return items, total

    async def samples(self, run_id: int, *, round_idx: int | None = None,
                      limit: int | None = None, offset: int = 0
                      ) -> tuple[list[dict[str, Any]], int]:
        """A run's samples: from memory while it runs (all of them), else as stored."""
        live = self.live.get(run_id)
        if live is not None:
            rows = [dict(s) for s in live.samples
                    if round_idx is None or s["round_idx"] == round_idx]
            end = None if limit is None else offset + limit
            return rows[offset:end], len(rows)
        return await self.history.read(lambda c: store.sample_rows(
            c, run_id, round_idx=round_idx, limit=limit, offset=offset))

    async def cancel(self, run_id: int) -> bool:
        """Cancel a live run and wait until what ran is stored; False if it is not running."""
        run = self.live.get(run_id)
        if run is None or not run.cancel():
            return False
        await run.done.wait()
        return True

    async def close(self) -> None:
        """Cancel every live run and wait for their samples to be stored (gateway shutdown)."""
        runs = list(self.live.values())
        for run in runs:
            run.cancel()
        for run in runs:
            await run.done.wait()
