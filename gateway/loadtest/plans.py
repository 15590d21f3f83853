"""Load-test plans: what to run, read from YAML or JSON and checked field by field.

A plan lists *rounds*. A round names a model and one or more numbers of
concurrent users; it expands into one round of the run per number of users::

    name: before lesson 3
    mode: mock                # mock (free) or real (admins; needs cost_cap_usd)
    cost_cap_usd: 0.50        # real mode: the run stops before spending more
    defaults:                 # applied to every round that does not say otherwise
      requests_per_user: 3
      think_time_s: [0.5, 2]  # seconds between a user's calls: fixed, or [min, max]
    rounds:
      - model: mock/lorem
        users: [1, 5, 10, 20, 40]
        stream: true
        max_tokens: 64
      - steps:                # a lesson: each user makes these calls in order
          - {model: mock/echo, prompt: "Hello", gap_s: 0}
          - {model: mock/lorem, prompt: "Explain tokens", gap_s: 20, max_tokens: 120}
        users: 40
        ramp_up_s: 60         # users arrive evenly over this many seconds

A round may name a saved lesson recording (``lesson: "03"``) instead of
``steps``; the gateway turns it into steps when the plan starts
(:func:`with_lesson_steps`). Every problem is a :class:`PlanError` whose
``field`` is the dotted path of the offending value (``rounds[1].users[0]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

MODES = ("mock", "real")
DEFAULT_PROMPT = "Explain in three sentences what a large language model is."
MAX_USERS = 1000
MAX_REQUESTS = 100_000  # per run, all rounds together
MAX_STEPS = 500
PLAN_FIELDS = ("name", "mode", "cost_cap_usd", "tenant", "seed", "defaults", "rounds")
ROUND_FIELDS = (
    "model", "provider", "users", "requests_per_user", "prompt", "max_tokens", "stream",
    "think_time_s", "ramp_up_s", "steps", "lesson", "label",
)
DEFAULT_FIELDS = ("requests_per_user", "prompt", "max_tokens", "stream", "think_time_s",
                  "ramp_up_s", "model")
STEP_FIELDS = ("model", "prompt", "max_tokens", "stream", "gap_s")


class PlanError(ValueError):
    """A plan that cannot run; ``field`` names the offending value's path."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Call:
    """One call a simulated user makes."""

    model: str
    prompt: str = DEFAULT_PROMPT
    max_tokens: int | None = 64
    stream: bool = True
    gap_s: float = 0.0  # pause before this call (lessons); bursts use think time instead

    def body(self) -> dict[str, Any]:
        """The OpenAI-compatible request body of this call."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.prompt}],
            "stream": self.stream,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass(frozen=True)
class RoundSpec:
    """One entry of ``rounds``: a burst of ``requests_per_user`` calls, or a lesson's steps."""

    users: tuple[int, ...]
    model: str | None = None
    provider: str | None = None
    requests_per_user: int = 3
    prompt: str = DEFAULT_PROMPT
    max_tokens: int | None = 64
    stream: bool = True
    think_time_s: tuple[float, float] = (0.0, 0.0)
    ramp_up_s: float = 0.0
    steps: tuple[Call, ...] = ()
    lesson: str | None = None
    label: str | None = None

    @property
    def is_lesson(self) -> bool:
        return bool(self.steps) or self.lesson is not None

    def script(self) -> tuple[Call, ...]:
        """The calls one user makes in this round, in order."""
        if self.is_lesson:
            return self.steps
        assert self.model is not None
        one = Call(self.model, self.prompt, self.max_tokens, self.stream)
        return (one,) * self.requests_per_user

    def models(self) -> list[str]:
        return sorted({c.model for c in self.steps} if self.is_lesson else {self.model or ""})


@dataclass(frozen=True)
class Round:
    """One round of a run: a round of the plan at one number of users."""

    index: int
    spec_index: int
    users: int
    spec: RoundSpec

    @property
    def label(self) -> str:
        name = self.spec.label or (
            f"lesson {self.spec.lesson}" if self.spec.lesson
            else "lesson" if self.spec.steps else self.spec.model or "?"
        )
        return f"{name} × {self.users} users"

    @property
    def requests(self) -> int:
        return self.users * len(self.spec.script())


@dataclass(frozen=True)
class LoadPlan:
    rounds: tuple[RoundSpec, ...]
    name: str = "load test"
    mode: str = "mock"
    cost_cap_usd: float | None = None
    tenant: str | None = None
    seed: int = 1
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def expand(self) -> list[Round]:
        """The run's rounds: each plan round once per number of users, in plan order."""
        out: list[Round] = []
        for spec_index, spec in enumerate(self.rounds):
            for users in spec.users:
                out.append(Round(len(out), spec_index, users, spec))
        return out

    @property
    def total_requests(self) -> int:
        return sum(r.requests for r in self.expand())

    def models(self) -> list[str]:
        return sorted({m for spec in self.rounds for m in spec.models()})

    def with_overrides(self, *, mode: str | None = None,
                       cost_cap_usd: float | None = None) -> LoadPlan:
        """The plan with a mode or a cost cap given on the command line, checked again."""
        data = dict(self.source)
        if mode is not None:
            data["mode"] = mode
        if cost_cap_usd is not None:
            data["cost_cap_usd"] = cost_cap_usd
        return parse_plan(data)


# -- parsing ---------------------------------------------------------------------------------


def load_plan_text(text: str) -> LoadPlan:
    """A plan from YAML or JSON text (JSON is YAML)."""
    return parse_plan(read_plan_text(text))


def read_plan_text(text: str) -> Any:
    """The parsed YAML or JSON of a plan, not yet checked."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PlanError(f"the plan is neither valid YAML nor JSON{where}") from None


def parse_plan(data: Any) -> LoadPlan:
    """A plan from its parsed YAML/JSON form; :class:`PlanError` names the first bad field."""
    if not isinstance(data, Mapping):
        raise PlanError("a plan is a mapping with at least 'rounds'")
    _unknown(data, PLAN_FIELDS, "")
    name = _text(data.get("name", "load test"), "name", limit=200)
    mode = data.get("mode", "mock")
    if mode not in MODES:
        raise PlanError(f"must be one of {', '.join(MODES)}, not {mode!r}", "mode")
    cap = data.get("cost_cap_usd")
    if cap is not None:
        cap = _number(cap, "cost_cap_usd", minimum=0.0, exclusive=True)
    if mode == "real" and cap is None:
        raise PlanError(
            "a real-mode run spends money: set a cost cap in US dollars (the run stops "
            "before passing it)", "cost_cap_usd",
        )
    tenant = data.get("tenant")
    if tenant is not None:
        tenant = _text(tenant, "tenant", limit=64)
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PlanError("must be a whole number", "seed")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise PlanError("must be a mapping of round fields", "defaults")
    _unknown(defaults, DEFAULT_FIELDS, "defaults")
    rounds = data.get("rounds")
    if not isinstance(rounds, list) or not rounds:
        raise PlanError("list at least one round", "rounds")
    specs = tuple(
        _round({**defaults, **entry} if isinstance(entry, Mapping) else entry,
               f"rounds[{i}]", mode)
        for i, entry in enumerate(rounds)
    )
    plan = LoadPlan(specs, name, mode, cap, tenant, seed, dict(data))
    if plan.total_requests > MAX_REQUESTS:
        raise PlanError(
            f"the plan makes {plan.total_requests:,} calls; at most {MAX_REQUESTS:,} per run",
            "rounds",
        )
    return plan


def _round(entry: Any, where: str, mode: str) -> RoundSpec:
    if not isinstance(entry, Mapping):
        raise PlanError("a round is a mapping (model, users, ...)", where)
    _unknown(entry, ROUND_FIELDS, where)
    users = _users(entry.get("users"), f"{where}.users")
    steps: tuple[Call, ...] = ()
    lesson = entry.get("lesson")
    raw_steps = entry.get("steps")
    if lesson is not None and raw_steps is not None:
        raise PlanError("give either 'lesson' or 'steps', not both", f"{where}.lesson")
    think = _think(entry.get("think_time_s", 0.0), f"{where}.think_time_s")
    ramp = _number(entry.get("ramp_up_s", 0.0), f"{where}.ramp_up_s", minimum=0.0,
                   maximum=3600.0)
    stream = _bool(entry.get("stream", True), f"{where}.stream")
    max_tokens = _max_tokens(entry.get("max_tokens", 64), f"{where}.max_tokens", mode)
    prompt = _text(entry.get("prompt", DEFAULT_PROMPT), f"{where}.prompt", limit=20_000)
    model = entry.get("model")
    if raw_steps is not None:
        steps = _steps(raw_steps, f"{where}.steps", mode, prompt, max_tokens, stream)
    elif lesson is not None:
        lesson = _text(str(lesson) if isinstance(lesson, int) else lesson, f"{where}.lesson",
                       limit=64)
    else:
        if model is None:
            raise PlanError("name the model (e.g. mock/lorem), or give a lesson's steps",
                            f"{where}.model")
    if model is not None:
        model = _text(model, f"{where}.model", limit=200)
    requests = entry.get("requests_per_user", 3)
    if isinstance(requests, bool) or not isinstance(requests, int) or not 1 <= requests <= 10_000:
        raise PlanError("must be a whole number from 1 to 10000", f"{where}.requests_per_user")
    provider = entry.get("provider")
    if provider is not None:
        provider = _text(provider, f"{where}.provider", limit=32)
    label = entry.get("label")
    if label is not None:
        label = _text(label, f"{where}.label", limit=100)
    return RoundSpec(users, model, provider, requests, prompt, max_tokens, stream, think, ramp,
                     steps, lesson, label)


def _steps(value: Any, where: str, mode: str, prompt: str, max_tokens: int | None,
           stream: bool) -> tuple[Call, ...]:
    if not isinstance(value, list) or not value:
        raise PlanError("list at least one step", where)
    if len(value) > MAX_STEPS:
        raise PlanError(f"at most {MAX_STEPS} steps", where)
    calls = []
    for i, step in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(step, Mapping):
            raise PlanError("a step is a mapping (model, prompt, gap_s, ...)", at)
        _unknown(step, STEP_FIELDS, at)
        if "model" not in step:
            raise PlanError("name the model of this step", f"{at}.model")
        calls.append(Call(
            model=_text(step["model"], f"{at}.model", limit=200),
            prompt=_text(step.get("prompt", prompt), f"{at}.prompt", limit=20_000),
            max_tokens=_max_tokens(step.get("max_tokens", max_tokens), f"{at}.max_tokens", mode),
            stream=_bool(step.get("stream", stream), f"{at}.stream"),
            gap_s=_number(step.get("gap_s", 0.0), f"{at}.gap_s", minimum=0.0, maximum=3600.0),
        ))
    return tuple(calls)


def with_lesson_steps(plan: LoadPlan, resolve: Callable[[str], Sequence[Call]]) -> LoadPlan:
    """The plan with every ``lesson: name`` round given the steps ``resolve`` finds for it."""
    rounds = []
    for i, spec in enumerate(plan.rounds):
        if spec.lesson is not None and not spec.steps:
            steps = tuple(resolve(spec.lesson))
            if not steps:
                raise PlanError(f"the lesson {spec.lesson!r} recorded no calls",
                                f"rounds[{i}].lesson")
            spec = replace(spec, steps=steps)
        rounds.append(spec)
    return replace(plan, rounds=tuple(rounds))


# -- field checks ----------------------------------------------------------------------------


def _unknown(data: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise PlanError(f"unknown field; known fields here: {', '.join(known)}", path)


def _text(value: Any, where: str, *, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlanError("must be a non-empty text", where)
    if len(value) > limit:
        raise PlanError(f"at most {limit} characters", where)
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PlanError("must be true or false", where)
    return value


def _number(value: Any, where: str, *, minimum: float, maximum: float | None = None,
            exclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanError("must be a number", where)
    if value < minimum or (exclusive and value == minimum):
        raise PlanError(f"must be {'more than' if exclusive else 'at least'} {minimum:g}", where)
    if maximum is not None and value > maximum:
        raise PlanError(f"must be at most {maximum:g}", where)
    return float(value)


def _users(value: Any, where: str) -> tuple[int, ...]:
    if value is None:
        raise PlanError("give a number of users, or a list of them (e.g. [1, 5, 10])", where)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PlanError("list at least one number of users", where)
    out = []
    for i, n in enumerate(items):
        at = f"{where}[{i}]" if isinstance(value, list) else where
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_USERS:
            raise PlanError(f"must be a whole number from 1 to {MAX_USERS}", at)
        out.append(n)
    return tuple(out)


def _think(value: Any, where: str) -> tuple[float, float]:
    if isinstance(value, list):
        if len(value) != 2:
            raise PlanError("give one number of seconds, or [min, max]", where)
        low = _number(value[0], f"{where}[0]", minimum=0.0, maximum=3600.0)
        high = _number(value[1], f"{where}[1]", minimum=0.0, maximum=3600.0)
        if high < low:
            raise PlanError("max must not be below min", f"{where}[1]")
        return low, high
    seconds = _number(value, where, minimum=0.0, maximum=3600.0)
    return seconds, seconds


def _max_tokens(value: Any, where: str, mode: str) -> int | None:
    if value is None:
        if mode == "real":
            raise PlanError("real mode needs max_tokens, so the worst-case cost is known", where)
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise PlanError("must be a whole number from 1 to 100000", where)
    return value


def plan_to_dict(plan: LoadPlan) -> dict[str, Any]:
    """The plan fully spelled out (defaults applied, lessons resolved): parses back to itself."""
    rounds: list[dict[str, Any]] = []
    for spec in plan.rounds:
        entry: dict[str, Any] = {
            "users": list(spec.users), "think_time_s": list(spec.think_time_s),
            "ramp_up_s": spec.ramp_up_s,
        }
        if spec.label:
            entry["label"] = spec.label
        if spec.is_lesson:
            entry["steps"] = [
                {"model": c.model, "prompt": c.prompt, "max_tokens": c.max_tokens,
                 "stream": c.stream, "gap_s": c.gap_s} for c in spec.steps
            ]
        else:
            entry.update(model=spec.model, requests_per_user=spec.requests_per_user,
                         prompt=spec.prompt, max_tokens=spec.max_tokens, stream=spec.stream)
            if spec.provider:
                entry["provider"] = spec.provider
        rounds.append(entry)
    out: dict[str, Any] = {"name": plan.name, "mode": plan.mode, "seed": plan.seed,
                           "rounds": rounds}
    if plan.cost_cap_usd is not None:
        out["cost_cap_usd"] = plan.cost_cap_usd
    if plan.tenant is not None:
        out["tenant"] = plan.tenant
    return out
