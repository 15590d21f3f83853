"""The OpenAI-compatible face: ``/v1/models`` and ``/v1/chat/completions``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.edge.asgi import chat_response
from gateway.edge.schemas import ChatCompletionRequest, openapi_body
from gateway.policy import FEATURES_OF_KIND, tenant_of

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.get("/models", summary="Models you may use, with metadata and prices")
async def list_models(identity: CurrentUser, services: ServicesDep) -> dict[str, Any]:
    """Only what a call would be allowed: on the school's list, its feature switched on,
    a key serving the school, and a price when the caller has a dollar limit."""
    tenant = tenant_of(identity, services.tenants)
    admission = services.admission
    limits = admission.limits_for(identity)
    features = set(tenant.enabled_features)
    data = [
        m.public() for m in services.providers.models()
        if tenant.allows_model(m.id)
        and features.intersection(FEATURES_OF_KIND.get(m.kind, (m.kind,)))
        and (m.has_price or not admission.dollar_limits(identity, m.id, limits))
        and services.pool.available(m.provider, identity.tenant)
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
) -> Response:
    # Served by gateway.edge.fastpath when the app runs behind it (as uvicorn serves it).
    raw = await request.body()
    prepared = await services.chat.prepare(identity, raw, source=call_source(request),
                                           content_type=request.headers.get("content-type"))
    return await chat_response(services.chat, prepared)
