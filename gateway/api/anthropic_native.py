"""The Anthropic-native face: ``POST /anthropic/v1/messages`` for the ``anthropic`` SDK
(``base_url=<gateway>/anthropic``). Errors come back in Anthropic's shape."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.edge.asgi import chat_response
from gateway.edge.schemas import AnthropicMessagesRequest, openapi_body

router = APIRouter(prefix="/anthropic", tags=["Anthropic-native"])


@router.post(
    "/v1/messages", response_model=None,
    summary="Anthropic Messages with any chat model (claude-* natively, others translated)",
    openapi_extra=openapi_body(AnthropicMessagesRequest),
)
async def messages(
    request: Request, identity: CurrentUser, services: ServicesDep
) -> Response:
    prepared = await services.native.prepare_anthropic(
        identity, await request.body(), source=call_source(request),
        content_type=request.headers.get("content-type"),
    )
    return await chat_response(services.chat, prepared)
