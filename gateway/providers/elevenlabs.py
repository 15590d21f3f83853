"""ElevenLabs: text to speech with a voice, stability and similarity; a voice list.

``POST /v1/text-to-speech/{voice_id}?output_format=…`` with ``xi-api-key``; the
answer is the audio itself. Characters are metered from the ``character-cost``
header when ElevenLabs sends it, else from the text.
"""

from __future__ import annotations

from typing import Any

from gateway.keypool import ProviderKey
from gateway.providers.http import Upstream, Vendor, VendorError

FORMATS = {  # OpenAI response_format → ElevenLabs output_format, content type
    "mp3": ("mp3_44100_128", "audio/mpeg"),
    "pcm": ("pcm_24000", "audio/pcm"),
    "wav": ("wav_44100", "audio/wav"),
    "opus": ("opus_48000_64", "audio/opus"),
}


def parse_error(status: int, body: Any) -> VendorError:
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return VendorError(str(detail.get("message", "")), detail.get("status"))
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [str(p) for p in first.get("loc", []) if p != "body"]
        return VendorError(str(first.get("msg", "")), "validation_error",
                           ".".join(loc) or None)
    return VendorError(str(detail or f"HTTP {status}")[:300])


class ElevenLabsProvider:
    id = "elevenlabs"

    def __init__(self, client: Upstream) -> None:
        self.http = Vendor("elevenlabs", "https://api.elevenlabs.io", client, parse_error)

    def _headers(self, key: ProviderKey | None) -> dict[str, str]:
        return {"xi-api-key": (key.secret if key else None) or ""}

    def _url(self, key: ProviderKey | None, path: str) -> str:
        return self.http.base(key.base_url if key else None) + path

    async def speech(
        self, key: ProviderKey | None, *, voice_id: str, text: str, model: str,
        voice_settings: dict[str, Any] | None, response_format: str, timeout: float,
    ) -> tuple[bytes, str, int]:
        output_format, mime = FORMATS.get(response_format, FORMATS["mp3"])
        body: dict[str, Any] = {"text": text, "model_id": model}
        if voice_settings:
            body["voice_settings"] = voice_settings
        response = await self.http.send(
            "POST", self._url(key, f"/v1/text-to-speech/{voice_id}"),
            params={"output_format": output_format}, headers=self._headers(key), json=body,
            timeout=timeout,
        )
        cost = response.headers.get("character-cost", "")
        characters = int(cost) if cost.isdigit() else len(text)
        return response.content, response.headers.get("content-type", mime), characters

    async def voices(self, key: ProviderKey | None, timeout: float) -> list[dict[str, Any]]:
        response = await self.http.send("GET", self._url(key, "/v1/voices"),
                                        headers=self._headers(key), timeout=timeout)
        return [
            {"id": v.get("voice_id"), "name": v.get("name"), "provider": "elevenlabs",
             "category": v.get("category"), "labels": v.get("labels") or {},
             "preview_url": v.get("preview_url")}
            for v in response.json().get("voices", [])
        ]

    async def aclose(self) -> None:
        return None
