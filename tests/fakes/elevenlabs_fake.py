"""ElevenLabs: ``POST /v1/text-to-speech/{voice_id}`` (``xi-api-key``, ``voice_settings``,
``output_format``) answering audio with a ``character-cost`` header; ``GET /v1/voices``;
errors as ``{"detail": {"status", "message"}}`` or a validation list."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes.common import FAKE_MP3, Fake, request_id

VOICES = [
    {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
     "labels": {"accent": "american", "gender": "female"},
     "preview_url": "https://example.invalid/rachel.mp3"},
    {"voice_id": "AZnzlk1XvdvUeBnXmlld", "name": "Domi", "category": "premade",
     "labels": {"accent": "american", "gender": "female"},
     "preview_url": "https://example.invalid/domi.mp3"},
]


def error_shape(status: int, kind: str, message: str, **_: Any) -> dict[str, Any]:
    code = {"auth": "invalid_api_key", "rate_limit": "too_many_concurrent_requests"}.get(
        kind, kind)
    return {"detail": {"status": code, "message": message}}


fake = Fake("elevenlabs", error_shape, lambda r: r.headers.get("xi-api-key"))


@fake.route("/v1/voices", ["GET"])
async def voices(request: Request) -> Response:
    return JSONResponse({"voices": VOICES})


@fake.route("/v1/text-to-speech/{voice_id}", ["POST"])
async def speech(request: Request) -> Response:
    voice_id = request.path_params["voice_id"]
    if voice_id not in {v["voice_id"] for v in VOICES}:
        return JSONResponse({"detail": {"status": "voice_not_found", "message": f"A voice with "
                                        f"voice_id {voice_id} was not found."}}, 404)
    body = await request.json()
    settings = body.get("voice_settings") or {}
    for name in ("stability", "similarity_boost", "style"):
        value = settings.get(name)
        if value is not None and not 0 <= float(value) <= 1:
            return JSONResponse({"detail": [{"loc": ["body", "voice_settings", name],
                                             "msg": "ensure this value is between 0 and 1",
                                             "type": "value_error"}]}, 422)
    text = str(body.get("text", ""))
    return Response(FAKE_MP3 + text.encode()[:50], media_type="audio/mpeg",
                    headers={"character-cost": str(len(text)), "request-id": request_id()})


app = fake.app()
