"""The Gemini-native face for ``google-genai`` (``GOOGLE_GEMINI_BASE_URL=<gateway>/google``):
``/google/{v1|v1beta}/models/{model}:generateContent``, ``:streamGenerateContent``,
``:embedContent`` and ``:batchEmbedContents``. Errors come back in Google's shape."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.edge.asgi import chat_response
from gateway.edge.schemas import GeminiRequest, openapi_body
from gateway.errors import NotFound

router = APIRouter(prefix="/google", tags=["Google-native"])
METHODS = ("generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents")


@router.post(
    "/{version}/models/{target:path}", response_model=None,
    summary="Gemini generateContent / streamGenerateContent / embedContent / batchEmbedContents",
    openapi_extra=openapi_body(GeminiRequest),
)
async def models_call(
    version: Literal["v1", "v1beta"], target: str, request: Request, identity: CurrentUser,
    services: ServicesDep,
) -> Any:
    model, _, method = target.rpartition(":")
    if not model or method not in METHODS:
        raise NotFound(f"Unknown method '{method}'; use one of {', '.join(METHODS)}.")
    raw = await request.body()
    content_type = request.headers.get("content-type")
    source = call_source(request)
    if method in ("embedContent", "batchEmbedContents"):
        return JSONResponse(await services.media.google_embeddings(
            identity, raw, model_name=model, method=method, version=version, source=source,
            content_type=content_type))
    stream = method == "streamGenerateContent"
    prepared = await services.native.prepare_google(
        identity, raw, model_name=model, stream=stream, version=version, source=source,
        content_type=content_type,
    )
    return await chat_response(services.chat, prepared)
