"""One chat call from start to finish: resolve, check, record, call, meter, record.

This is the path of one call in ARCHITECTURE.md, for chat, independent of the
face (OpenAI-compatible here; the vendor-native faces reuse it). Plain Python:
the routers only hand it an identity and a body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.auth import Identity
from gateway.errors import ClassroomError, ClientDisconnected, ProviderError
from gateway.history import HistoryStore, RunStart
from gateway.policy import check_can_use, check_model, tenant_of
from gateway.pricing import ModelInfo, Usage, token_cost
from gateway.providers import ChatCall, ChatProvider, ProviderRegistry
from gateway.providers.base import usage_from_openai
from gateway.providers.mock import count_tokens
from gateway.schemas import ChatCompletionRequest, last_user_text, parse_body
from gateway.tenants import Tenant

log = logging.getLogger("gateway.pipeline")


@dataclass
class PreparedChat:
    identity: Identity
    request: ChatCompletionRequest
    model: ModelInfo
    provider: ChatProvider
    run_id: int
    source: str
    api: str


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return b"data: " + payload.encode() + b"\n\n"


class ChatService:
    def __init__(
        self, providers: ProviderRegistry, tenants: dict[str, Tenant], history: HistoryStore
    ) -> None:
        self.providers = providers
        self.tenants = tenants
        self.history = history
        self._background: set[asyncio.Task[Any]] = set()

    # -- helpers ---------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a history write that must happen even if the caller's task is cancelled."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def record_refusal(
        self, identity: Identity, error: ClassroomError, *, source: str, api: str,
        model: str | None, stream: bool = False, request_text: str | None = None,
    ) -> None:
        """A call refused before reaching a provider still leaves a row saying why."""
        run_id = await self.history.start(
            RunStart(
                user=identity.name, tenant=identity.tenant, role=identity.role, source=source,
                kind="chat", api=api, provider=None, model=model, stream=stream,
                request_text=request_text,
            )
        )
        await self.history.finish(
            run_id, status="error", http_status=error.status, error_code=error.code,
            error_message=error.message,
        )

    async def _finish_ok(
        self, prepared: PreparedChat, usage: Usage, text: str, first_token_at: float | None
    ) -> None:
        cost = token_cost(prepared.model, usage)
        await self.history.finish(
            prepared.run_id, status="ok", http_status=200,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens, reasoning_tokens=usage.reasoning_tokens,
            cost_micro_usd=cost.micro_usd, cost_status=cost.status,
            response_text=text, first_token_at=first_token_at,
        )

    async def _finish_error(
        self, prepared: PreparedChat, error: ClassroomError, *, usage: Usage | None = None,
        text: str | None = None, first_token_at: float | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": "error", "http_status": error.status, "error_code": error.code,
            "error_message": error.message, "first_token_at": first_token_at,
        }
        if usage is not None:
            cost = token_cost(prepared.model, usage)
            values.update(
                prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                cost_micro_usd=cost.micro_usd, cost_status=cost.status, response_text=text,
            )
        await self.history.finish(prepared.run_id, **values)

    # -- the pipeline ------------------------------------------------------------

    async def prepare(
        self, identity: Identity, raw: bytes, *, source: str, api: str = "openai"
    ) -> PreparedChat:
        """Parse, resolve and check; write the ``running`` row. Refusals are recorded."""
        model_hint: str | None = None
        request_text: str | None = None
        stream = False
        try:
            model_hint, stream = _peek(raw)
            request = parse_body(raw, ChatCompletionRequest)
            request_text = last_user_text(request.messages)
            check_can_use(identity)
            model = self.providers.lookup(request.model)
            check_model(identity, tenant_of(identity, self.tenants), request.model)
            provider = self.providers.provider_for(model)
        except ClassroomError as error:
            await self.record_refusal(
                identity, error, source=source, api=api, model=model_hint, stream=stream,
                request_text=request_text,
            )
            raise
        run_id = await self.history.start(
            RunStart(
                user=identity.name, tenant=identity.tenant, role=identity.role, source=source,
                kind="chat", api=api, provider=model.provider, model=model.id,
                stream=request.stream, request_text=request_text,
            )
        )
        return PreparedChat(identity, request, model, provider, run_id, source, api)

    async def complete(self, prepared: PreparedChat) -> dict[str, Any]:
        call = ChatCall(model=prepared.model, request=prepared.request)
        try:
            result = await prepared.provider.chat(call)
        except ClassroomError as error:
            await self._finish_error(prepared, error)
            raise
        except asyncio.CancelledError:
            self._spawn(self._finish_error(prepared, _disconnected()))
            raise
        except Exception as exc:
            log.exception("provider %s failed", prepared.model.provider)
            broken = ProviderError(f"The {prepared.model.provider} provider failed unexpectedly.")
            await self._finish_error(prepared, broken)
            raise broken from exc
        await self._finish_ok(prepared, result.usage, result.text, None)
        return result.response

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[bytes]:
        """SSE bytes for the caller; the run is finished whatever happens to the caller."""
        call = ChatCall(model=prepared.model, request=prepared.request)
        wants_usage = prepared.request.wants_usage
        text: list[str] = []
        usage: Usage | None = None
        first_token_at: float | None = None
        finished = False
        try:
            async for chunk in prepared.provider.stream(call):
                if chunk.get("usage"):
                    usage = usage_from_openai(chunk["usage"])
                    if not wants_usage:
                        if not chunk.get("choices"):
                            continue
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if first_token_at is None:
                            first_token_at = time.time()
                        text.append(piece)
                yield sse(chunk)
            finished = True
            final = usage or self._estimate(prepared, "".join(text))
            # The row is final before the caller hears [DONE], so a client that reads
            # its history right after the stream sees the finished run.
            await self._finish_ok(prepared, final, "".join(text), first_token_at)
            yield sse("[DONE]")
        except ClassroomError as failure:
            finished = True
            partial = self._estimate(prepared, "".join(text))
            await self._finish_error(
                prepared, failure, usage=partial, text="".join(text), first_token_at=first_token_at
            )
            yield sse(failure.to_openai())
        except Exception:
            finished = True
            log.exception("stream from %s failed", prepared.model.provider)
            broken = ProviderError(f"The {prepared.model.provider} provider failed mid-stream.")
            await self._finish_error(prepared, broken, usage=self._estimate(prepared, "".join(text)))
            yield sse(broken.to_openai())
        finally:
            if not finished:
                # The caller went away (closed the kernel, lost the network): meter what
                # was produced, flagged as estimated.
                self._spawn(
                    self._finish_error(
                        prepared, _disconnected(), usage=usage or self._estimate(
                            prepared, "".join(text)
                        ), text="".join(text), first_token_at=first_token_at,
                    )
                )

    def _estimate(self, prepared: PreparedChat, text: str) -> Usage:
        from gateway.providers.mock import prompt_tokens

        return Usage(
            prompt_tokens=prompt_tokens(prepared.request.messages),
            completion_tokens=count_tokens(text),
            estimated=True,
        )


def _disconnected() -> ClassroomError:
    return ClientDisconnected("The caller disconnected before the reply was complete.")


def _peek(raw: bytes) -> tuple[str | None, bool]:
    """Best effort model name and stream flag from a body that may be invalid, for the record."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, False
    if not isinstance(data, dict):
        return None, False
    model = data.get("model")
    return (model[:200] if isinstance(model, str) else None), data.get("stream") is True
