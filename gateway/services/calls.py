"""The steps every provider call shares, whatever its kind (chat, embedding, image,
speech, video) and face (OpenAI-compatible, Anthropic, Google, classroom API):

    resolve  → may this caller use this model (school's list, feature, a price when the
               caller has a dollar limit), and is there a key for it?
    record   → a ``running`` history row before the call (refusals get a row too)
    admit    → quotas and budget (``Admission``), worst case reserved
    attempt  → a pooled key, retries and failover (``Attempts``)
    meter    → usage and cost from the provider's own numbers
    record   → the row finished, whatever happened to the caller

Plain Python; the routers hand it an identity and a parsed body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.auth import Identity
from gateway.config.tenants import Tenant
from gateway.edge.origin import current_origin
from gateway.errors import (
    ClassroomError,
    ClientDisconnected,
    InvalidRequest,
    NoKeyAvailable,
    ProviderError,
)
from gateway.history import HistoryStore, RunStart
from gateway.history.artifacts import record_units
from gateway.keypool import Lease, PoolBackend, Tier
from gateway.policy import check_can_use, check_feature, check_model, tenant_of
from gateway.policy.admission import Admission, CallEstimate
from gateway.pricing import Cost, ModelInfo, TokenUsage
from gateway.providers import ProviderRegistry
from gateway.providers.http import LABELS
from gateway.providers.retry import Attempt, Attempts, Claimant

log = logging.getLogger("gateway.services.calls")
T = TypeVar("T")
KIND_WORDS = {
    "chat": "chats", "embedding": "makes embeddings", "image": "makes images",
    "speech": "speaks", "video": "makes videos", "midjourney": "runs Midjourney-style jobs",
    "music": "makes music",
}


@dataclass(frozen=True)
class Caller:
    identity: Identity
    source: str = "sdk"
    api: str = "openai"

    @property
    def tier(self) -> Tier:
        if self.source == "loadtest":
            return Tier.LOADTEST
        if self.identity.role in ("teacher", "admin") or self.identity.is_admin:
            return Tier.DEMO
        return Tier.STUDENT

    def who(self, tokens: int = 0) -> Claimant:
        return Claimant(self.identity.tenant, self.identity.name, self.tier, tokens)


@dataclass
class Metered:
    """What one finished call cost, from the provider's own numbers where it gave them."""

    cost: Cost
    usage: TokenUsage | None = None
    text: str | None = None
    units: dict[str, float] = field(default_factory=dict)  # images, characters, seconds, tasks
    blocked: str | None = None  # answered 200 but blocked by the vendor's safety system
    priced_as: str | None = None  # the catalog model charged (a dated snapshot's base)

    @property
    def tokens(self) -> int:
        return self.usage.total_tokens if self.usage else 0


def lease_times(lease: Lease | None) -> dict[str, float]:
    """A pooled run's ``started_at``/``finished_at`` are its lease's grant and release, so
    every key's concurrency and request windows can be checked from the history alone."""
    if lease is None or lease.key is None:
        return {}
    times = {"started_at": lease.granted_at}
    if lease.released_at is not None:
        times["finished_at"] = lease.released_at
    return times


def disconnected() -> ClassroomError:
    return ClientDisconnected("The caller disconnected before the reply was complete.")


class Calls:
    def __init__(
        self, registry: ProviderRegistry, tenants: dict[str, Tenant], history: HistoryStore,
        pool: PoolBackend, admission: Admission, attempts: Attempts,
    ) -> None:
        self.registry = registry
        self.tenants = tenants
        self.history = history
        self.pool = pool
        self.admission = admission
        self.attempts = attempts
        self._background: set[asyncio.Task[Any]] = set()

    # -- background writes ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a write that must happen even if the caller's task is cancelled."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- resolve ------------------------------------------------------------------------------

    def resolve(self, caller: Caller, name: str, kinds: tuple[str, ...]) -> ModelInfo:
        """The model a caller may use now, or the reason why not (in words, with a code)."""
        identity = caller.identity
        check_can_use(identity)
        model = self.registry.lookup(name)
        if model.kind not in kinds:
            raise InvalidRequest(
                f"The model '{name}' {KIND_WORDS.get(model.kind, model.kind)}; this endpoint "
                f"needs a model that {KIND_WORDS.get(kinds[0], kinds[0])}. GET /v1/models lists "
                "each model's kind.", param="model",
            )
        tenant = tenant_of(identity, self.tenants)
        check_model(identity, tenant, name)
        check_feature(tenant, model.kind)
        self.admission.check_priced(identity, model)
        if not self.pool.available(model.provider, identity.tenant):
            label = LABELS.get(model.provider, model.provider)
            raise NoKeyAvailable(
                f"The model '{name}' needs a working {label} key, and none serves your school "
                "right now. Ask your teacher, or practise with the mock models (mock/echo, "
                "mock/image, ...).", param="model",
            )
        return model

    # -- record ---------------------------------------------------------------------------------

    async def start(
        self, caller: Caller, model: ModelInfo | None, kind: str, *, stream: bool = False,
        request_text: str | None = None, model_name: str | None = None,
    ) -> int:
        identity = caller.identity
        origin = current_origin()  # the notebook and cell the caller's kernel claims
        return await self.history.start(RunStart(
            user=identity.name, tenant=identity.tenant, role=identity.role, source=caller.source,
            kind=kind, api=caller.api, provider=model.provider if model else None,
            model=model.id if model else model_name, stream=stream, request_text=request_text,
            notebook=origin.notebook, cell=origin.cell,
            cell_position=origin.position, cell_count=origin.cells,
        ))

    async def refuse(
        self, caller: Caller, error: ClassroomError, *, kind: str, model: str | None,
        stream: bool = False, request_text: str | None = None,
    ) -> None:
        """A call refused before reaching a provider still leaves a row saying why."""
        run_id = await self.start(caller, None, kind, stream=stream, request_text=request_text,
                                  model_name=model)
        await self.fail(run_id, error)

    async def succeed(
        self, run_id: int, metered: Metered, *, key_name: str | None = None,
        first_token_at: float | None = None, lease: Lease | None = None,
    ) -> None:
        usage = metered.usage
        values: dict[str, Any] = {
            **lease_times(lease),
            "status": "ok", "http_status": 200, "key_name": key_name,
            "cost_micro_usd": metered.cost.micro_usd, "cost_status": metered.cost.status,
            "priced_as": metered.priced_as,
            "response_text": metered.text, "first_token_at": first_token_at,
        }
        if metered.blocked:
            values.update(status="error", error_code="content_blocked",
                          error_message=metered.blocked)
        if usage is not None:
            values.update(
                prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens, reasoning_tokens=usage.reasoning_tokens,
            )
        await self.history.finish(run_id, **values)
        if metered.units:
            await record_units(self.history, run_id, metered.units)

    async def fail(
        self, run_id: int, error: ClassroomError, *, metered: Metered | None = None,
        key_name: str | None = None, first_token_at: float | None = None,
        lease: Lease | None = None,
    ) -> None:
        values: dict[str, Any] = {
            **lease_times(lease),
            "status": "error", "http_status": error.status, "error_code": error.code,
            "error_message": error.message, "first_token_at": first_token_at,
        }
        if key_name:
            values["key_name"] = key_name
        if metered is not None:
            values.update(cost_micro_usd=metered.cost.micro_usd, cost_status=metered.cost.status,
                          response_text=metered.text, priced_as=metered.priced_as)
            if metered.usage is not None:
                values.update(prompt_tokens=metered.usage.prompt_tokens,
                              completion_tokens=metered.usage.completion_tokens,
                              cached_tokens=metered.usage.cached_tokens,
                              reasoning_tokens=metered.usage.reasoning_tokens)
        await self.history.finish(run_id, **values)

    # -- one whole non-streaming call ---------------------------------------------------------

    async def once(
        self, caller: Caller, model: ModelInfo, run_id: int, estimate: CallEstimate,
        attempt: Attempt[T], meter: Callable[[T], Awaitable[Metered]],
    ) -> tuple[T, Metered]:
        """Admit, attempt (with retries) and meter one call whose row ``run_id`` is running."""
        key_name: str | None = None
        lease: Lease | None = None
        try:
            async with self.admission.admit(caller.identity, model, estimate) as ticket:
                async with self.attempts.run(
                    model.provider, caller.who(estimate.tokens), attempt
                ) as outcome:
                    key_name, lease = outcome.key_name, outcome.lease
                    metered = await meter(outcome.result)
                    outcome.lease.used_tokens(metered.tokens)
                ticket.settle(metered.cost.micro_usd, metered.tokens)
        except ClassroomError as error:
            await self.fail(run_id, error, key_name=key_name, lease=lease)
            raise
        except asyncio.CancelledError:
            self.spawn(self.fail(run_id, disconnected(), key_name=key_name, lease=lease))
            raise
        except Exception as exc:
            log.exception("provider %s failed", model.provider)
            broken = ProviderError(
                f"The call to {LABELS.get(model.provider, model.provider)} failed unexpectedly."
            )
            await self.fail(run_id, broken, key_name=key_name)
            raise broken from exc
        await self.succeed(run_id, metered, key_name=key_name, lease=lease)
        return outcome.result, metered
