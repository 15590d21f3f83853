"""Running a plan: simulated users calling the real pipeline, round after round.

Each round starts ``users`` simulated users — synthetic identities
``loadtest-<run>-<n>`` in the school under test, role ``student``, kind
``loadtest`` — spread evenly over the round's ``ramp_up_s``. A user makes its
round's calls one after the other (think time, or a lesson's pauses, between
them) through :class:`gateway.services.chat.ChatService` with ``source="loadtest"``,
so every call passes identity, policy, the key pool (in its lowest tier,
behind every real student), the provider and the history. Each call becomes a
sample: what the user saw (latency, time to first token) and what the history
recorded (status, queue wait, tokens, cost).

Real mode spends money, so a :class:`CostGuard` reserves each call's worst
case (the prompt's upper bound from :mod:`gateway.pricing.tokens`, plus
``max_tokens`` at the output price) before sending it and settles it to the
recorded cost after; a call whose worst case no longer fits under the cap is
not sent, and the run ends ``stopped_at_cap``.

A run can be cancelled: calls in flight are abandoned (the pipeline records
them as disconnected), and every sample taken so far is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.auth import USE, Identity
from gateway.errors import ClassroomError
from gateway.history import HistoryStore
from gateway.loadtest import store
from gateway.loadtest.plans import Call, LoadPlan, Round
from gateway.loadtest.stats import figures
from gateway.policy.admission import chat_estimate
from gateway.pricing import ModelInfo
from gateway.pricing.tokens import prompt_upper_bound

log = logging.getLogger("gateway.loadtest")
FLUSH_EVERY = 100  # samples kept in memory before they are written


class Chat(Protocol):
    """What the runner needs of :class:`gateway.services.chat.ChatService`."""

    async def prepare(self, identity: Identity, raw: bytes, *, source: str) -> Any: ...

    async def complete(self, prepared: Any) -> Any: ...

    def stream(self, prepared: Any) -> AsyncIterator[bytes]: ...


def worst_case_micro_usd(model: ModelInfo, call: Call) -> int | None:
    """The most one call can cost (None: the model is unpriced)."""
    return chat_estimate(model, prompt_upper_bound(model, call.body()),
                         call.max_tokens).worst_case_micro_usd


def estimate(plan: LoadPlan, models: dict[str, ModelInfo]) -> dict[str, Any]:
    """What the plan may cost at most, per model and in all, before it starts."""
    per_model: dict[str, dict[str, Any]] = {}
    total = 0
    unpriced: list[str] = []
    for rnd in plan.expand():
        for call in rnd.spec.script():
            info = models[call.model]
            worst = worst_case_micro_usd(info, call)
            entry = per_model.setdefault(call.model, {
                "model": call.model, "provider": info.provider, "calls": 0,
                "worst_case_usd": 0.0, "priced": worst is not None,
            })
            entry["calls"] += rnd.users
            if worst is None:
                if call.model not in unpriced:
                    unpriced.append(call.model)
                continue
            entry["worst_case_usd"] += worst * rnd.users / 1_000_000
            total += worst * rnd.users
    return {
        "requests": plan.total_requests,
        "rounds": len(plan.expand()),
        "worst_case_usd": total / 1_000_000,
        "worst_case_micro_usd": total,
        "unpriced_models": unpriced,
        "per_model": list(per_model.values()),
        "note": "Every call counted at its max_tokens, prompts with a 25 % margin: an upper "
                "bound, not a forecast.",
    }


class CostGuard:
    """Reservations against a cap: what is spent plus what is in flight never passes it.

    A call whose worst case does not fit waits for calls in flight to settle (they
    usually cost less than their worst case); with nothing in flight, the cap is reached.
    """

    def __init__(self, cap_micro_usd: int) -> None:
        self.cap = cap_micro_usd
        self.spent = 0
        self.reserved = 0
        self._settled = asyncio.Event()

    async def reserve(self, worst: int) -> bool:
        while self.spent + self.reserved + worst > self.cap:
            if self.reserved == 0:
                return False
            self._settled.clear()
            await self._settled.wait()
        self.reserved += worst
        return True

    def settle(self, worst: int, actual: int | None) -> None:
        self.reserved -= worst
        # unknown actual cost (call abandoned before metering): count the worst case
        self.spent += worst if actual is None else actual
        self._settled.set()


@dataclass
class RoundState:
    round: Round
    status: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    done: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def public(self, with_figures: bool = True) -> dict[str, Any]:
        r = self.round
        models = r.spec.models()
        out: dict[str, Any] = {
            "idx": r.index, "label": r.label, "kind": "lesson" if r.spec.is_lesson else "burst",
            "model": models[0] if len(models) == 1 else None,
            "users": r.users, "requests_planned": r.requests, "requests_done": self.done,
            "status": self.status, "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if with_figures:
            out["figures"] = figures(self.samples)
        return out


def synthetic_user(run_id: int, n: int, tenant: str) -> Identity:
    return Identity(name=f"loadtest-{run_id}-{n}", tenant=tenant, role="student",
                    scopes=frozenset({USE}), kind="loadtest")


def _first_text(chunk: bytes) -> tuple[bool, str | None]:
    """(has text, error code) of a chunk of the OpenAI-compatible stream."""
    text, error = False, None
    for line in chunk.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        if "error" in event:
            error = str((event["error"] or {}).get("code") or "stream_error")
        for choice in event.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                text = True
    return text, error


class LoadTestRun:
    """One run of a plan; ``await run.run()`` drives it, ``run.cancel()`` stops it."""

    def __init__(
        self, run_id: int, plan: LoadPlan, tenant: str, models: dict[str, ModelInfo],
        chat: Chat, history: HistoryStore, *, created_by: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = run_id
        self.plan = plan
        self.tenant = tenant
        self.models = models
        self.chat = chat
        self.history = history
        self.created_by = created_by
        self.clock = clock
        self.rounds = [RoundState(r) for r in plan.expand()]
        self.guard = (CostGuard(round(plan.cost_cap_usd * 1_000_000))
                      if plan.mode == "real" and plan.cost_cap_usd is not None else None)
        self.status = "running"
        self.error: str | None = None
        self.capped = False
        self.cancelled = False
        self.finished_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsaved: list[dict[str, Any]] = []
        self.done = asyncio.Event()

    # -- control ---------------------------------------------------------------------------------

    def cancel(self) -> bool:
        """Stop now; what ran is kept. False when the run had already ended."""
        if self.done.is_set() or self.cancelled:
            return False
        self.cancelled = True
        for task in self._tasks:
            task.cancel()
        return True

    @property
    def stopping(self) -> bool:
        return self.cancelled or self.capped

    # -- reporting -------------------------------------------------------------------------------

    @property
    def samples(self) -> list[dict[str, Any]]:
        return [s for r in self.rounds for s in r.samples]

    @property
    def spent_usd(self) -> float:
        if self.guard is not None:
            return self.guard.spent / 1_000_000
        return sum(s.get("cost_micro_usd") or 0 for s in self.samples) / 1_000_000

    def public(self) -> dict[str, Any]:
        """Live status: per-round progress and running figures."""
        done = sum(r.done for r in self.rounds)
        return {
            "id": self.id, "status": self.status, "requests_done": done,
            "requests_planned": self.plan.total_requests, "spent_usd": self.spent_usd,
            "rounds": [r.public() for r in self.rounds], "finished_at": self.finished_at,
            "error_message": self.error,
        }

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            for state in self.rounds:
                if self.stopping:
                    state.status = "skipped"
                    await self._save_round(state)
                    continue
                await self._round(state)
            self.status = ("cancelled" if self.cancelled
                           else "stopped_at_cap" if self.capped else "done")
        except Exception as exc:  # keep what ran, say what broke
            log.exception("load test %s failed", self.id)
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if self.status == "running":  # the run's own task was cancelled (shutdown)
                self.cancelled, self.status = True, "cancelled"
            self.finished_at = self.clock()
            try:
                await asyncio.shield(self._finish())
            finally:
                self.done.set()

    async def _finish(self) -> None:
        await self._flush()
        for state in self.rounds:
            if state.status in ("pending", "running"):
                state.status = "cancelled" if state.status == "running" else "skipped"
                await self._save_round(state)
        values = {
            "status": self.status, "finished_at": self.finished_at,
            "requests_done": sum(r.done for r in self.rounds),
            "spent_micro_usd": round(self.spent_usd * 1_000_000), "error_message": self.error,
        }
        await self.history.write(lambda c: store.update_run(c, self.id, **values))

    async def _round(self, state: RoundState) -> None:
        rnd = state.round
        state.status, state.started_at = "running", self.clock()
        await self._save_round(state)
        ramp = rnd.spec.ramp_up_s
        self._tasks = [
            asyncio.create_task(self._user(state, n, ramp * n / rnd.users))
            for n in range(rnd.users)
        ]
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        state.finished_at = self.clock()
        state.status = ("cancelled" if self.cancelled
                        else "stopped_at_cap" if self.capped else "done")
        await self._flush()
        await self._save_round(state)

    async def _save_round(self, state: RoundState) -> None:
        values = {k: v for k, v in state.public(with_figures=False).items()
                  if k in ("status", "started_at", "finished_at", "requests_done")}
        done = sum(r.done for r in self.rounds)

        def write(conn: Any) -> None:
            store.update_round(conn, self.id, state.round.index, **values)
            store.update_run(conn, self.id, requests_done=done)

        await self.history.write(write)

    async def _flush(self) -> None:
        batch, self._unsaved = self._unsaved, []
        if batch:
            await self.history.write(lambda c: store.add_samples(c, self.id, batch))

    async def _user(self, state: RoundState, n: int, delay: float) -> None:
        rnd = state.round
        identity = synthetic_user(self.id, n, self.tenant)
        rng = random.Random(f"{self.plan.seed}:{rnd.index}:{n}")
        low, high = rnd.spec.think_time_s
        if delay:
            await asyncio.sleep(delay)  # this user's arrival in the ramp-up
        for seq, call in enumerate(rnd.spec.script()):
            pause = call.gap_s if rnd.spec.is_lesson else (rng.uniform(low, high) if seq else 0.0)
            if pause:
                await asyncio.sleep(pause)  # the simulated student reads and thinks
            if self.stopping:
                return
            await self._call(state, n, seq, identity, call)

    async def _call(self, state: RoundState, n: int, seq: int, identity: Identity,
                    call: Call) -> None:
        model = self.models[call.model]
        worst = 0
        if self.guard is not None:
            worst = worst_case_micro_usd(model, call) or 0
            if self.capped or not await self.guard.reserve(worst):
                self.capped = True
                return
        sample: dict[str, Any] = {
            "round_idx": state.round.index, "users": state.round.users, "user_idx": n,
            "seq": seq, "provider": model.provider, "model": call.model, "stream": call.stream,
            "status": "ok", "error_code": None, "started_at": self.clock(),
        }
        began = time.perf_counter()
        try:
            await self._send(sample, identity, call, began)
        except asyncio.CancelledError:
            sample.update(status="cancelled", error_code="cancelled",
                          finished_at=self.clock(),
                          latency_ms=(time.perf_counter() - began) * 1000)
            self._keep(state, sample, count=False)
            if self.guard is not None:
                self.guard.settle(worst, None)
            raise
        sample["latency_ms"] = round((time.perf_counter() - began) * 1000, 3)
        sample["finished_at"] = self.clock()
        if sample.get("run_id") is not None:
            await self._add_history(sample)
        if self.guard is not None:
            self.guard.settle(worst, sample.get("cost_micro_usd") or 0)
        self._keep(state, sample)
        if len(self._unsaved) >= FLUSH_EVERY:
            await self._flush()

    async def _send(self, sample: dict[str, Any], identity: Identity, call: Call,
                    began: float) -> None:
        raw = json.dumps(call.body()).encode()
        try:
            prepared = await self.chat.prepare(identity, raw, source="loadtest")
            sample["run_id"] = prepared.run_id
            if not call.stream:
                await self.chat.complete(prepared)
                return
            async for chunk in self.chat.stream(prepared):
                has_text, error = _first_text(chunk)
                if has_text and sample.get("ttft_ms") is None:
                    sample["ttft_ms"] = round((time.perf_counter() - began) * 1000, 3)
                if error:
                    sample.update(status="error", error_code=error)
        except ClassroomError as error:
            sample.update(status="error", error_code=error.code)

    async def _add_history(self, sample: dict[str, Any]) -> None:
        """What the pipeline recorded of the call: its outcome, wait, tokens and cost."""
        run_id = int(sample["run_id"])
        rows = await self.history.read(lambda c: store.history_rows(c, [run_id]))
        row = rows.get(run_id)
        if row is None:
            return
        if row["status"] != "ok":
            sample.update(status="error", error_code=row["error_code"] or sample["error_code"])
        if row["queued_at"] and row["started_at"] and row["started_at"] != row["queued_at"]:
            # equal times: the row was never told when its key was granted (wait unknown)
            sample["queue_wait_ms"] = round((row["started_at"] - row["queued_at"]) * 1000, 3)
        sample.update(prompt_tokens=row["prompt_tokens"],
                      completion_tokens=row["completion_tokens"],
                      cost_micro_usd=row["cost_micro_usd"])

    def _keep(self, state: RoundState, sample: dict[str, Any], count: bool = True) -> None:
        state.samples.append(sample)
        self._unsaved.append(sample)
        if count:
            state.done += 1


def round_rows(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    """The rounds' rows as a run starts."""
    rows = []
    for r in rounds:
        models = r.spec.models()
        rows.append({"idx": r.index, "label": r.label[:200],
                     "kind": "lesson" if r.spec.is_lesson else "burst",
                     "model": models[0] if len(models) == 1 else None, "users": r.users,
                     "requests_planned": r.requests, "requests_done": 0, "status": "pending"})
    return rows
