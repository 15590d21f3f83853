"""A discrete-event simulation of the key pool serving a class, and the key planner.

The capacity planner's engine. It replays a lesson's calls (:class:`Step`:
which provider, how long the provider took, the pause before it) for N
students arriving evenly over a window — student ``i`` of ``N`` arrives at
``window × i / N`` — and schedules them the way :mod:`gateway.keypool.pool`
does: a call waits in its provider's queue until a key has a free concurrency
slot and room in its sliding 60-second request and token windows; keys are
chosen by priority, then headroom. Each student has one call at a time, so the
pool's round-robin across users is first-come first-served here, and every
student is in the same tier. A provider without declared keys is unlimited
(the mock) and never waits.

:func:`plan_keys` searches the smallest number of keys per provider, each
added key copying the limits of the provider's real (first) key, that keeps the
p95 queue wait under a target. Plain Python, deterministic.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.keypool.pool import DEFAULT_MARGIN
from gateway.keypool.pool import WINDOW as POOL_WINDOW
from gateway.loadtest.stats import percentile

WINDOW = POOL_WINDOW + DEFAULT_MARGIN  # seconds a grant counts, as in the pool


class SimulationError(ValueError):
    """The lesson cannot be simulated (a provider without any key to plan from)."""


@dataclass(frozen=True)
class KeyLimits:
    provider: str
    name: str
    concurrency_limit: int | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    priority: int = 0

    @property
    def limited(self) -> bool:
        return any(v is not None for v in (self.concurrency_limit, self.rpm_limit,
                                            self.tpm_limit))

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "concurrency_limit": self.concurrency_limit,
                "rpm_limit": self.rpm_limit, "tpm_limit": self.tpm_limit,
                "priority": self.priority}


@dataclass(frozen=True)
class Step:
    """One call of a lesson, as recorded."""

    provider: str
    model: str
    service_s: float  # the provider's time, lease to answer
    gap_s: float = 0.0  # the student's pause before this call (after the previous answer)
    tokens: int = 0  # counted against TPM windows
    prompt: str | None = None
    max_tokens: int | None = None
    stream: bool = False


@dataclass
class _Key:
    limits: KeyLimits
    active: int = 0
    grants: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    tokens_in_window: int = 0

    def prune(self, now: float) -> None:
        while self.grants and self.grants[0] <= now - WINDOW:
            self.grants.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW:
            self.tokens_in_window -= self.tokens.popleft()[1]

    def fits(self, tokens: int) -> bool:
        k = self.limits
        if k.concurrency_limit is not None and self.active >= k.concurrency_limit:
            return False
        if k.rpm_limit is not None and len(self.grants) >= k.rpm_limit:
            return False
        if k.tpm_limit is not None and self.tokens_in_window > 0:
            return self.tokens_in_window + tokens <= k.tpm_limit
        return True

    def headroom(self) -> float:
        k, room = self.limits, 1.0
        if k.concurrency_limit:
            room = min(room, 1 - self.active / k.concurrency_limit)
        if k.rpm_limit:
            room = min(room, 1 - len(self.grants) / k.rpm_limit)
        if k.tpm_limit:
            room = min(room, 1 - self.tokens_in_window / k.tpm_limit)
        return room

    def opening(self, now: float) -> float | None:
        """When the clock alone may make room (a finished call wakes the queue anyway)."""
        times = []
        if self.limits.rpm_limit is not None and len(self.grants) >= self.limits.rpm_limit:
            times.append(self.grants[0] + WINDOW)
        if self.limits.tpm_limit is not None and self.tokens:
            times.append(self.tokens[0][0] + WINDOW)
        later = [t for t in times if t > now]
        return min(later) if later else None


@dataclass
class Simulation:
    """Waits and completion times: ``waits[k][i]`` is student i's wait at step k (s)."""

    steps: list[Step]
    students: int
    window_s: float
    arrivals: list[float]
    waits: list[list[float]]
    finished: list[list[float]]  # seconds since the first arrival

    def step_figures(self) -> list[dict[str, Any]]:
        out = []
        for k, step in enumerate(self.steps):
            out.append({
                "step": k, "model": step.model, "provider": step.provider,
                "service_s": round(step.service_s, 3), "gap_s": round(step.gap_s, 3),
                "p50_wait_s": _r(percentile(self.waits[k], 50)),
                "p95_wait_s": _r(percentile(self.waits[k], 95)),
                "max_wait_s": _r(max(self.waits[k])),
                "p50_done_s": _r(percentile(self.finished[k], 50)),
                "p95_done_s": _r(percentile(self.finished[k], 95)),
            })
        return out

    def provider_p95_wait(self) -> dict[str, float]:
        by: dict[str, list[float]] = {}
        for k, step in enumerate(self.steps):
            by.setdefault(step.provider, []).extend(self.waits[k])
        return {p: percentile(v, 95) or 0.0 for p, v in by.items()}

    def summary(self) -> dict[str, Any]:
        every = [w for row in self.waits for w in row]
        lesson = [self.finished[-1][i] - self.arrivals[i] for i in range(self.students)]
        return {
            "students": self.students, "window_s": self.window_s, "calls": len(every),
            "p50_wait_s": _r(percentile(every, 50)), "p95_wait_s": _r(percentile(every, 95)),
            "max_wait_s": _r(max(every) if every else None),
            "p95_lesson_s": _r(percentile(lesson, 95)),
            "p95_all_done_s": _r(percentile(self.finished[-1], 95)),
            "last_done_s": _r(max(self.finished[-1])),
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def arrivals(students: int, window_s: float) -> list[float]:
    """Student ``i`` of ``N`` arrives at ``window × i / N``: evenly, the first at 0."""
    return [window_s * i / students for i in range(students)]


def simulate(steps: Sequence[Step], students: int, window_s: float,
             keys: Iterable[KeyLimits]) -> Simulation:
    if not steps:
        raise SimulationError("the lesson has no calls to replay")
    if students < 1:
        raise SimulationError("at least one student")
    pools: dict[str, list[_Key]] = {}
    for limits in keys:
        pools.setdefault(limits.provider, []).append(_Key(limits))
    for step in steps:
        if step.provider != "mock" and step.provider not in pools:
            raise SimulationError(
                f"no {step.provider} key is declared, so there are no limits to plan with"
            )
    starts = arrivals(students, window_s)
    waits = [[0.0] * students for _ in steps]
    finished = [[0.0] * students for _ in steps]
    order = itertools.count()
    # (time, order, kind, student, step, provider); kind: ask, done, wake
    events: list[tuple[float, int, str, int, int, str]] = []
    queues: dict[str, list[tuple[float, int, int]]] = {}
    holding: dict[tuple[int, int], _Key] = {}
    wake_at: dict[str, float] = {}

    def push(time: float, kind: str, student: int, k: int, provider: str) -> None:
        heapq.heappush(events, (time, next(order), kind, student, k, provider))

    def grant(now: float, key: _Key | None, student: int, k: int, asked: float) -> None:
        step = steps[k]
        if key is not None:
            key.active += 1
            key.grants.append(now)
            if step.tokens:
                key.tokens.append((now, step.tokens))
                key.tokens_in_window += step.tokens
            holding[(student, k)] = key
        waits[k][student] = now - asked
        push(now + step.service_s, "done", student, k, step.provider)

    def pick(pool: list[_Key], now: float, tokens: int) -> _Key | None:
        best: _Key | None = None
        best_rank: tuple[int, float] | None = None
        for key in pool:
            key.prune(now)
            if key.fits(tokens):
                rank = (key.limits.priority, key.headroom())
                if best_rank is None or rank > best_rank:
                    best, best_rank = key, rank
        return best

    def dispatch(provider: str, now: float) -> None:
        """Grant, in queue order, every waiting call that fits (as the pool does)."""
        queue, pool = queues.get(provider, []), pools[provider]
        i = 0
        while i < len(queue):
            asked, student, k = queue[i]
            key = pick(pool, now, steps[k].tokens)
            if key is None:
                i += 1
                continue
            queue.pop(i)
            grant(now, key, student, k, asked)
        if queue:
            openings = [t for key in pool if (t := key.opening(now)) is not None]
            if openings and min(openings) < wake_at.get(provider, float("inf")):
                wake_at[provider] = min(openings)
                push(min(openings), "wake", -1, -1, provider)

    for i, start in enumerate(starts):
        push(start + steps[0].gap_s, "ask", i, 0, steps[0].provider)
    while events:
        now, _, kind, student, k, provider = heapq.heappop(events)
        if kind == "wake":
            if wake_at.get(provider) == now:
                del wake_at[provider]
            dispatch(provider, now)
        elif kind == "ask":
            if not pools.get(provider):
                grant(now, None, student, k, now)
                continue
            queues.setdefault(provider, []).append((now, student, k))
            dispatch(provider, now)
        else:  # done
            finished[k][student] = now
            if k + 1 < len(steps):
                nxt = steps[k + 1]
                push(now + nxt.gap_s, "ask", student, k + 1, nxt.provider)
            key = holding.pop((student, k), None)
            if key is not None:
                key.active -= 1
                dispatch(provider, now)
    return Simulation(list(steps), students, window_s, starts, waits, finished)


# -- the key planner ------------------------------------------------------------------------------


@dataclass
class KeyPlan:
    target_p95_wait_s: float
    counts: dict[str, int]  # provider → keys needed (absent: unlimited)
    met: bool
    keys: list[KeyLimits]
    simulation: Simulation

    def public(self) -> dict[str, Any]:
        return {
            "target_p95_wait_s": self.target_p95_wait_s,
            "met": self.met,
            "keys_needed": self.counts,
            "keys": [{"provider": k.provider, **k.public()} for k in self.keys],
            "predicted": self.simulation.summary(),
        }


def configuration(real: Sequence[KeyLimits], counts: dict[str, int]) -> list[KeyLimits]:
    """``counts[p]`` keys of provider p: its real keys first, then copies of its first key."""
    out: list[KeyLimits] = []
    for provider, count in counts.items():
        mine = sorted((k for k in real if k.provider == provider),
                      key=lambda k: (-k.priority, k.name))
        out.extend(mine[:count])
        for extra in range(count - len(mine)):
            out.append(replace(mine[0], name=f"{mine[0].name}+{extra + 1}"))
    return out


def plan_keys(steps: Sequence[Step], students: int, window_s: float,
              real: Sequence[KeyLimits], target_p95_wait_s: float,
              max_keys: int = 64) -> KeyPlan:
    """The smallest key counts (per provider) whose simulated p95 wait meets the target."""
    providers = sorted({s.provider for s in steps})
    limited = [p for p in providers if any(k.provider == p and k.limited for k in real)]
    for p in providers:
        if p != "mock" and not any(k.provider == p for k in real):
            raise SimulationError(
                f"no {p} key is declared, so there are no limits to plan with"
            )
    fixed = [k for k in real if k.provider in providers and k.provider not in limited]
    counts = {p: 1 for p in limited}

    def run(c: dict[str, int]) -> Simulation:
        return simulate(steps, students, window_s, fixed + configuration(real, c))

    def late(sim: Simulation) -> list[str]:
        waits = sim.provider_p95_wait()
        return [p for p in limited if waits.get(p, 0.0) > target_p95_wait_s]

    sim = run(counts)
    while (over := [p for p in late(sim) if counts[p] < max_keys]):
        for p in over:
            counts[p] += 1
        sim = run(counts)
    # Growing one provider changes when the others are asked: give back what is not needed.
    for p in limited:
        while counts[p] > 1:
            trial = {**counts, p: counts[p] - 1}
            trial_sim = run(trial)
            if late(trial_sim):
                break
            counts, sim = trial, trial_sim
    return KeyPlan(target_p95_wait_s, counts, not late(sim),
                   fixed + configuration(real, counts), sim)


def predict(steps: Sequence[Step], students: int, window_s: float, keys: Sequence[KeyLimits],
            target_p95_wait_s: float) -> dict[str, Any]:
    """The capacity planner's answer: the lesson with today's keys, and the keys it needs."""
    providers = {s.provider for s in steps}
    current = [k for k in keys if k.provider in providers]
    now = simulate(steps, students, window_s, current)
    needed = plan_keys(steps, students, window_s, current, target_p95_wait_s)
    have = {p: sum(1 for k in current if k.provider == p) for p in sorted(providers)}
    return {
        "students": students,
        "window_s": window_s,
        "arrivals": "evenly over the window: student i of N at window × i / N",
        "steps": [{"step": i, "provider": s.provider, "model": s.model,
                   "service_s": round(s.service_s, 3), "gap_s": round(s.gap_s, 3),
                   "tokens": s.tokens} for i, s in enumerate(steps)],
        "current_keys": [{"provider": k.provider, **k.public()} for k in current],
        "keys_now": have,
        "predicted": {"summary": now.summary(), "steps": now.step_figures()},
        "key_plan": needed.public(),
    }
