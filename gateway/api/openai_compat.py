"""The OpenAI-compatible face: ``/v1/models`` and ``/v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.policy import tenant_of
from gateway.schemas import ChatCompletionRequest, openapi_body

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("/models", summary="Models you may use, with metadata and prices")
async def list_models(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    tenant = tenant_of(identity, services.tenants)
    data = [
        m.public() for m in services.providers.models()
        if tenant.allows_model(m.id) and services.pool.available(m.provider, identity.tenant)
    ]
    return {"object": "list", "data": data}


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI format) with any chat model, streamed as SSE when "
    "stream=true",
    openapi_extra=openapi_body(ChatCompletionRequest),
    response_model=None,
)
async def chat_completions(
    request: Request, identity: CurrentUser, services: ServicesDep
) -> JSONResponse | StreamingResponse:
    raw = await request.body()
    prepared = await services.chat.prepare(identity, raw, source=call_source(request),
                                           content_type=request.headers.get("content-type"))
    if prepared.stream:
        stream = await services.chat.open_stream(prepared)
        return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
    return JSONResponse(await services.chat.complete(prepared))
