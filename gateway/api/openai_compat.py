"""The OpenAI-compatible face: ``/v1/models`` and ``/v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.policy import tenant_of
from gateway.schemas import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.get("/models", summary="Models you may use, with metadata and prices")
async def list_models(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    tenant = tenant_of(identity, services.tenants)
    data = [m.public() for m in services.providers.available() if tenant.allows_model(m.id)]
    return {"object": "list", "data": data}


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI format), streamed as SSE when stream=true",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": ChatCompletionRequest.model_json_schema()}
            },
        }
    },
    response_model=None,
)
async def chat_completions(
    request: Request, identity: CurrentUser, services: ServicesDep
) -> JSONResponse | StreamingResponse:
    raw = await request.body()
    prepared = await services.chat.prepare(identity, raw, source=call_source(request))
    if prepared.request.stream:
        return StreamingResponse(
            services.chat.stream(prepared),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return JSONResponse(await services.chat.complete(prepared))
