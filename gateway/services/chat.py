"""One chat call from start to finish, whatever the face it came through.

A face (OpenAI-compatible here; Anthropic and Google in :mod:`gateway.services.native`)
parses its body into a :class:`ChatPlan`: how to make one attempt with a key,
plainly or as a stream, and how to frame what comes back in its own wire
format. The rest is the same for every face: resolve, record, admit, attempt
with retries, meter from the provider's own numbers, record.

A stream is primed (its first frame awaited) before the HTTP response starts,
so a refusal or a provider failure before the first byte is an ordinary error
response that each SDK turns into its own exception; after the first byte,
failures are framed in the stream, and a caller who leaves is still metered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from gateway.auth import Identity
from gateway.edge.schemas import ChatCompletionRequest, last_user_text, load_object, validate
from gateway.errors import ClassroomError, ProviderError
from gateway.keypool import Lease, ProviderKey
from gateway.policy.admission import chat_estimate
from gateway.pricing import ModelInfo, TokenUsage, token_cost
from gateway.pricing.tokens import prompt_upper_bound
from gateway.providers.base import ChatCall, ChatResult, StreamEvent
from gateway.providers.http import LABELS
from gateway.providers.mock import count_tokens
from gateway.services.calls import Caller, Calls, Metered, disconnected
from gateway.services.tools import check_openai as check_openai_tools

log = logging.getLogger("gateway.services.chat")


@dataclass
class ChatPlan:
    """How one chat call is attempted and how its answer is framed for its face."""

    complete: Callable[[ProviderKey | None, AsyncExitStack], Awaitable[ChatResult]]
    open: Callable[[ProviderKey | None, AsyncExitStack], Awaitable[AsyncIterator[StreamEvent]]]
    frame: Callable[[StreamEvent], bytes | None]
    frame_error: Callable[[ClassroomError], bytes]
    done: bytes | None = None
    # What else a finished (non-streamed) answer needs, e.g. its images kept as artifacts.
    keep: Callable[[ChatResult, int], Awaitable[dict[str, float]]] | None = None
    # The caller's format is the vendor's: an answer's own JSON (``ChatResult.raw``) may
    # be sent on as it came.
    passthrough: bool = False


@dataclass
class PreparedChat:
    caller: Caller
    model: ModelInfo
    run_id: int
    stream: bool
    prompt_estimate: int
    max_output: int | None
    plan: ChatPlan

    @property
    def identity(self) -> Identity:
        return self.caller.identity


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return b"data: " + payload.encode() + b"\n\n"


def peek(raw: bytes) -> tuple[str | None, bool]:
    """Best effort model name and stream flag from a body that may be invalid, for the record."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, False
    if not isinstance(data, dict):
        return None, False
    return hint(data)


def hint(data: dict[str, Any]) -> tuple[str | None, bool]:
    """The model name and stream flag of a parsed body, for the record."""
    model = data.get("model")
    return (model[:200] if isinstance(model, str) else None), data.get("stream") is True


class ChatService:
    def __init__(self, calls: Calls, timeout: float, keepalive: float | None = 5.0) -> None:
        self.calls = calls
        self.timeout = timeout
        self.keepalive = keepalive

    async def open_stream(self, prepared: PreparedChat) -> AsyncIterator[bytes]:
        """The framed stream of a prepared call, primed, with keep-alives while it queues."""
        return await primed(
            self.stream(prepared), frame_error=prepared.plan.frame_error, keepalive=self.keepalive
        )

    @property
    def registry(self) -> Any:
        return self.calls.registry

    async def drain(self) -> None:
        await self.calls.drain()

    # -- the OpenAI-compatible face ---------------------------------------------------------------

    async def prepare(
        self, identity: Identity, raw: bytes, *, source: str, api: str = "openai",
        content_type: str | None = None,
    ) -> PreparedChat:
        """Parse, resolve and check; write the ``running`` row. Refusals are recorded."""
        caller = Caller(identity, source, api)
        body: dict[str, Any] | None = None
        request_text: str | None = None
        try:
            body = load_object(raw, content_type)  # parsed once; validation copies what it uses
            request = validate(body, ChatCompletionRequest)
            check_openai_tools(body)
            request_text = last_user_text(request.messages)
            model = self.calls.resolve(caller, request.model, ("chat",))
        except ClassroomError as error:
            model_hint, stream = hint(body) if body is not None else peek(raw)
            await self.calls.refuse(caller, error, kind="chat", model=model_hint, stream=stream,
                                    request_text=request_text)
            raise
        return await self.begin(caller, model, request, self.openai_plan(model, request, body),
                                request_text)

    async def begin(
        self, caller: Caller, model: ModelInfo, request: ChatCompletionRequest | None,
        plan: ChatPlan,
        request_text: str | None, *, stream: bool | None = None, prompt_estimate: int = 0,
        max_output: int | None = None, kind: str = "chat",
    ) -> PreparedChat:
        streaming = request.stream if request is not None else bool(stream)
        if request is not None:
            prompt_estimate = prompt_estimate or prompt_upper_bound(model, request)
            max_output = max_output or request.output_limit
        run_id = await self.calls.start(caller, model, kind, stream=streaming,
                                        request_text=request_text)
        return PreparedChat(caller, model, run_id, streaming, prompt_estimate, max_output, plan)

    def openai_plan(self, model: ModelInfo, request: ChatCompletionRequest,
                    body: dict[str, Any] | None) -> ChatPlan:
        adapter = self.registry.adapter(model.provider)

        def call(key: ProviderKey | None) -> ChatCall:
            return ChatCall(model, request, key, self.timeout, body)

        async def complete(key: ProviderKey | None, stack: AsyncExitStack) -> ChatResult:
            result: ChatResult = await adapter.chat(call(key))
            return result

        async def open_stream(key: ProviderKey | None,
                              stack: AsyncExitStack) -> AsyncIterator[StreamEvent]:
            pieces: AsyncIterator[StreamEvent] = await adapter.open_stream(call(key), stack)
            return pieces

        wants_usage = request.wants_usage

        def frame(piece: StreamEvent) -> bytes | None:
            chunk = piece.payload
            if chunk.get("usage") and not wants_usage:
                if not chunk.get("choices"):
                    return None
                return sse({k: v for k, v in chunk.items() if k != "usage"})
            if piece.raw is not None:  # an OpenAI chunk for an OpenAI caller: as it came
                return b"data: " + piece.raw.encode() + b"\n\n"
            return sse(chunk)

        return ChatPlan(complete, open_stream, frame, lambda e: sse(e.to_openai()), sse("[DONE]"),
                    passthrough=True)

    # -- every face -----------------------------------------------------------------------------

    def _estimate(self, prepared: PreparedChat) -> Any:
        return chat_estimate(prepared.model, prepared.prompt_estimate, prepared.max_output)

    async def complete_body(self, prepared: PreparedChat) -> bytes:
        """The answer as JSON bytes: the vendor's own when the caller speaks its format."""
        result = await self.complete(prepared)
        if result.raw is not None and prepared.plan.passthrough and prepared.plan.keep is None:
            return result.raw
        return json.dumps(result.response, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")

    async def complete(self, prepared: PreparedChat) -> ChatResult:
        """One whole non-streamed call: admitted, attempted with retries, metered, recorded."""
        async def meter(result: ChatResult) -> Metered:
            units = await prepared.plan.keep(result, prepared.run_id) if prepared.plan.keep \
                else {}
            return Metered(token_cost(prepared.model, result.usage), result.usage, result.text,
                           units=units, blocked=result.blocked,
                           priced_as=prepared.model.priced_as)

        result, _ = await self.calls.once(
            prepared.caller, prepared.model, prepared.run_id, self._estimate(prepared),
            prepared.plan.complete, meter,
        )
        return result

    def _metered(self, prepared: PreparedChat, usage: TokenUsage | None, final: bool,
                 text: str, blocked: str | None) -> Metered:
        if usage is None or not final:
            # The provider's count never came (the caller left, or it failed): estimate
            # the rest from what was received, and say so.
            usage = TokenUsage(
                prompt_tokens=(usage.prompt_tokens if usage and usage.prompt_tokens
                               else prepared.prompt_estimate),
                completion_tokens=max(usage.completion_tokens if usage else 0, count_tokens(text)),
                cached_tokens=usage.cached_tokens if usage else 0,
                cache_write_tokens=usage.cache_write_tokens if usage else 0,
                estimated=True,
            )
        return Metered(token_cost(prepared.model, usage), usage, text, blocked=blocked,
                       priced_as=prepared.model.priced_as)

    async def stream(self, prepared: PreparedChat) -> AsyncIterator[bytes]:
        """Framed bytes for the caller; the run is finished whatever happens to the caller."""
        plan = prepared.plan
        text: list[str] = []
        usage: TokenUsage | None = None
        final = False
        blocked: str | None = None
        first_token_at: float | None = None
        key_name: str | None = None
        lease: Lease | None = None
        sent = False
        pending: list[bytes] = []  # framed, not yet sent: the rest of one network read
        finished = False
        metered: Metered | None = None
        estimate = self._estimate(prepared)
        try:
            async with self.calls.admission.admit(prepared.identity, prepared.model,
                                                  estimate) as ticket:
                try:
                    async with self.calls.attempts.run(
                        prepared.model.provider, prepared.caller.who(estimate.tokens), plan.open
                    ) as outcome:
                        key_name, lease = outcome.key_name, outcome.lease
                        async for piece in outcome.result:
                            if piece.usage is not None:
                                usage, final = piece.usage, piece.final
                            blocked = blocked or piece.blocked
                            if piece.text:
                                first_token_at = first_token_at or time.time()
                                text.append(piece.text)
                            data = plan.frame(piece)
                            if data is not None:
                                pending.append(data)
                            if piece.flush and pending:
                                # what arrived in one read goes out in one write
                                sent = True
                                data, pending = b"".join(pending), []
                                yield data
                                outcome.lease.renew()
                        if pending:
                            sent = True
                            data, pending = b"".join(pending), []
                            yield data
                        metered = self._metered(prepared, usage, final, "".join(text), blocked)
                        outcome.lease.used_tokens(metered.tokens)
                finally:
                    if text or usage is not None:
                        metered = metered or self._metered(prepared, usage, False, "".join(text),
                                                           blocked)
                        ticket.settle(metered.cost.micro_usd, metered.tokens)
            assert metered is not None
            finished = True
            # The row is final before the caller hears the end, so a client that reads
            # its history right after the stream sees the finished run.
            await self.calls.succeed(prepared.run_id, metered, key_name=key_name,
                                     first_token_at=first_token_at, lease=lease)
            if plan.done:
                yield plan.done
        except ClassroomError as failure:
            finished = True
            await self._failed(prepared, failure, metered, key_name, first_token_at, lease)
            if not sent and not pending:
                raise
            yield b"".join(pending) + plan.frame_error(failure)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            finished = True
            log.exception("stream from %s failed", prepared.model.provider)
            broken = ProviderError(
                f"The stream from {LABELS.get(prepared.model.provider, prepared.model.provider)} "
                "failed unexpectedly."
            )
            await self._failed(prepared, broken, metered, key_name, first_token_at, lease)
            if not sent and not pending:
                raise broken from exc
            yield b"".join(pending) + plan.frame_error(broken)
        finally:
            if not finished:
                # The caller went away (closed the kernel, lost the network): meter what
                # was produced, flagged as estimated.
                self.calls.spawn(self.calls.fail(
                    prepared.run_id, disconnected(),
                    metered=metered or self._metered(prepared, usage, False, "".join(text),
                                                     blocked),
                    key_name=key_name, first_token_at=first_token_at, lease=lease,
                ))

    async def _failed(self, prepared: PreparedChat, error: ClassroomError,
                      metered: Metered | None, key_name: str | None,
                      first_token_at: float | None, lease: Lease | None = None) -> None:
        await self.calls.fail(prepared.run_id, error, metered=metered, key_name=key_name,
                              first_token_at=first_token_at, lease=lease)


KEEPALIVE = b": waiting for your turn\n\n"  # for a free key, or for your own earlier calls


async def primed(
    stream: AsyncIterator[bytes], *, frame_error: Callable[[ClassroomError], bytes] | None = None,
    keepalive: float | None = None,
) -> AsyncIterator[bytes]:
    """Await the first frame (errors before it raise here, as HTTP errors), then the rest.

    A call queued for a key may wait a long time before its first frame. After
    ``keepalive`` seconds the response starts anyway with SSE comments, repeated
    while it waits, so that clients and proxies do not give up; an error that
    comes after that is sent as the face's error frame.
    """
    first_frame: asyncio.Future[bytes] = asyncio.ensure_future(stream.__anext__())
    if keepalive is None:
        await asyncio.wait({first_frame})
    else:
        await asyncio.wait({first_frame}, timeout=keepalive)

    if first_frame.done():
        try:
            first = first_frame.result()
        except StopAsyncIteration:
            first = b""

        async def chained() -> AsyncIterator[bytes]:
            try:
                if first:
                    yield first
                async for chunk in stream:
                    yield chunk
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        return chained()

    async def waiting() -> AsyncIterator[bytes]:
        try:
            yield KEEPALIVE
            while not first_frame.done():
                await asyncio.wait({first_frame}, timeout=keepalive)
                if not first_frame.done():
                    yield KEEPALIVE
            try:
                first = first_frame.result()
            except StopAsyncIteration:
                return
            except ClassroomError as error:
                if frame_error is not None:
                    yield frame_error(error)
                return
            yield first
            async for chunk in stream:
                yield chunk
        finally:
            if not first_frame.done():
                first_frame.cancel()
                await asyncio.wait({first_frame})
            await stream.aclose()  # type: ignore[attr-defined]

    return waiting()
