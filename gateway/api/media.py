"""Media on the OpenAI-compatible face: ``/v1/embeddings``, ``/v1/images/generations``,
``/v1/images/edits`` (multipart), ``/v1/audio/speech`` (OpenAI voices and ElevenLabs
``eleven_*`` models, with ``voice_settings``); and ``/api/voices``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.api.deps import CurrentUser, ServicesDep, call_source
from gateway.contract import ARTIFACT_ID_HEADER, RUN_ID_HEADER
from gateway.edge.formdata import parse_form
from gateway.edge.schemas import (
    IMAGE_EDIT_FORM,
    EmbeddingRequest,
    ImageRequest,
    SpeechRequest,
    load_object,
    openapi_body,
)
from gateway.errors import InvalidRequest

router = APIRouter(tags=["OpenAI-compatible"])


@router.post("/v1/embeddings", summary="Embeddings (OpenAI format): text-embedding-*, "
             "gemini-embedding-*, mock/embed", openapi_extra=openapi_body(EmbeddingRequest))
async def embeddings(request: Request, identity: CurrentUser,
                     services: ServicesDep) -> dict[str, Any]:
    body = await _json(request, services, identity, "embedding")
    return await services.media.embeddings(identity, body, source=call_source(request))


@router.post("/v1/images/generations", summary="Generate images (gpt-image-*, dall-e-*, "
             "gemini-*-image, mock/image); stored in your gallery",
             openapi_extra=openapi_body(ImageRequest))
async def image_generations(request: Request, identity: CurrentUser,
                            services: ServicesDep) -> dict[str, Any]:
    body = await _json(request, services, identity, "image")
    return await services.media.images(identity, body, source=call_source(request),
                                       base_url=str(request.base_url))


@router.post("/v1/images/edits", summary="Edit images (multipart: image or image[], prompt, "
             "mask, ...); a session_id continues a multi-turn image session",
             openapi_extra=openapi_body(IMAGE_EDIT_FORM, "multipart/form-data"))
async def image_edits(request: Request, identity: CurrentUser,
                      services: ServicesDep) -> dict[str, Any]:
    raw = await request.body()
    try:
        form = parse_form(request.headers.get("content-type", ""), raw)
    except InvalidRequest as error:
        await services.calls.refuse(_caller(request, identity), error, kind="image", model=None)
        raise
    body: dict[str, Any] = dict(form.fields)
    for name in ("n",):
        if name in body and body[name].isdigit():
            body[name] = int(body[name])
    inputs = [(f.data, f.content_type or "image/png") for f in form.files_named("image",
                                                                                 "image[]")]
    masks = form.files_named("mask")
    return await services.media.images(
        identity, body, source=call_source(request), base_url=str(request.base_url),
        inputs=inputs, mask=masks[0].data if masks else None,
    )


@router.post("/v1/audio/speech", response_class=Response, summary="Text to speech: tts-*, "
             "gpt-4o-mini-tts, eleven_* (voice id or name, voice_settings), mock/speech",
             openapi_extra=openapi_body(SpeechRequest))
async def speech(request: Request, identity: CurrentUser, services: ServicesDep) -> Response:
    body = await _json(request, services, identity, "speech")
    audio, mime, ids = await services.media.speech(identity, body, source=call_source(request))
    return Response(audio, media_type=mime, headers={
        RUN_ID_HEADER: str(ids["run_id"]),
        ARTIFACT_ID_HEADER: str(ids["artifact_id"] or ""),
    })


@router.get("/api/voices", tags=["Classroom"], summary="Voices for /v1/audio/speech")
async def voices(
    identity: CurrentUser, services: ServicesDep,
    provider: Annotated[Literal["elevenlabs", "openai", "mock"], Query()] = "mock",
) -> dict[str, Any]:
    return {"provider": provider, "voices": await services.media.voices(identity, provider)}


def _caller(request: Request, identity: Any) -> Any:
    from gateway.services.calls import Caller

    return Caller(identity, call_source(request), "openai")


async def _json(request: Request, services: Any, identity: Any, kind: str) -> dict[str, Any]:
    """The JSON body; an unreadable one is refused with a history row, like any refusal."""
    try:
        return load_object(await request.body(), request.headers.get("content-type"))
    except InvalidRequest as error:
        await services.calls.refuse(_caller(request, identity), error, kind=kind, model=None)
        raise
