"""The gateway's resources beyond chat, as methods of :class:`~classroom.GatewayClient`.

Each is one HTTP call (or a short poll) with the gateway's own JSON, so the
lessons can show exactly what goes over the wire::

    client.catalog()                                  # models with kind, provider, prices
    client.embed(["cat", "dog"], model="mock/embed")  # one vector per text
    client.generate_image("a red fox", model="mock/image")
    client.speech("Hello!", model="mock/speech")      # audio bytes
    job = client.start_job("video", "mock/video", "waves at sunset")
    client.wait_job(job["id"])
    client.artifacts(kind="image")                    # your gallery, newest first
    client.my_usage()                                 # today and this month, with limits
    client.create_conversation(...), client.add_message(...), client.conversation(id)
    client.send_to_session(sid, "Hello")              # stateful: the gateway keeps context
    client.memory(session=sid), client.add_memory(...), client.delete_memory(entry_id)
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._catalog import Catalog
from ._exceptions import GatewayError
from ._usage import normalize_usage

if TYPE_CHECKING:
    import httpx

CATALOG_TTL = 60.0
JOB_DONE = {"succeeded", "failed", "cancelled", "canceled"}


@dataclass(frozen=True)
class Image:
    """One generated image: its bytes (when sent inline) and where the gateway keeps it."""

    data: bytes | None
    url: str | None
    artifact_id: str | None
    revised_prompt: str | None = None
    mime: str = "image/png"


@dataclass(frozen=True)
class Audio:
    data: bytes
    mime: str

    @property
    def format(self) -> str:
        """The short name ipywidgets.Audio wants: mp3, wav, ogg…"""
        subtype = self.mime.split("/")[-1].split(";")[0]
        return {"mpeg": "mp3", "x-wav": "wav", "wave": "wav"}.get(subtype, subtype or "mp3")


class ResourcesMixin:
    """Methods on top of ``request`` / ``get`` / ``post`` (provided by GatewayClient)."""

    if TYPE_CHECKING:
        base_url: str | None

        def request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...
        def get(self, path: str, *, params: Mapping[str, Any] | None = None, **kw: Any
                ) -> Any: ...
        def post(self, path: str, json: Any = None, **kw: Any) -> Any: ...
        def history(self, *, limit: int = ..., offset: int = ..., model: str | None = ...,
                    status: str | None = ...) -> dict[str, Any]: ...

    # -- models ------------------------------------------------------------------------

    def catalog(self, refresh: bool = False) -> Catalog:
        """The models you may use, with their kind, provider and prices (cached a minute)."""
        cached: tuple[float, Catalog] | None = getattr(self, "_catalog_cache", None)
        if cached is not None and not refresh and time.monotonic() - cached[0] < CATALOG_TTL:
            return cached[1]
        catalog = Catalog.from_json(self.get("/v1/models"))
        self._catalog_cache = (time.monotonic(), catalog)
        return catalog

    # -- embeddings, images, speech ------------------------------------------------------

    def embed(self, texts: Sequence[str] | str, model: str = "mock/embed") -> list[list[float]]:
        """One embedding vector per text (``POST /v1/embeddings``), in the order given."""
        inputs = [texts] if isinstance(texts, str) else list(texts)
        body = self.post("/v1/embeddings", {"model": model, "input": inputs}, model=model)
        items = sorted(body.get("data") or [], key=lambda item: item.get("index", 0))
        vectors = [[float(x) for x in item["embedding"]] for item in items]
        if len(vectors) != len(inputs):
            raise GatewayError(
                f"The gateway returned {len(vectors)} embeddings for {len(inputs)} texts.",
                code="http_error",
            )
        return vectors

    def generate_image(
        self, prompt: str, model: str = "mock/image", *, n: int = 1,
        size: str | None = None, response_format: str = "b64_json", **params: Any,
    ) -> list[Image]:
        """Images for ``prompt`` (``POST /v1/images/generations``, OpenAI's format)."""
        payload: dict[str, Any] = {
            "model": model, "prompt": prompt, "n": n, "response_format": response_format,
            **params,
        }
        if size:
            payload["size"] = size
        body = self.post("/v1/images/generations", payload, model=model)
        return [self._image(item) for item in body.get("data") or []]

    def edit_image(
        self, image: bytes, prompt: str, model: str = "mock/image", *,
        mask: bytes | None = None, size: str | None = None,
        response_format: str = "b64_json", **params: Any,
    ) -> list[Image]:
        """Change an image by instructions (``POST /v1/images/edits``, a multipart form)."""
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("image", ("image.png", image, "image/png"))
        ]
        if mask is not None:
            files.append(("mask", ("mask.png", mask, "image/png")))
        data = {"model": model, "prompt": prompt, "response_format": response_format,
                **{k: str(v) for k, v in params.items()}}
        if size:
            data["size"] = size
        response = self.request("POST", "/v1/images/edits", files=files, data=data, model=model)
        return [self._image(item) for item in response.json().get("data") or []]

    def _image(self, item: Mapping[str, Any]) -> Image:
        data = base64.b64decode(item["b64_json"]) if item.get("b64_json") else None
        url = item.get("url")
        artifact_id = item.get("artifact_id") or item.get("id")
        if artifact_id is None and isinstance(url, str) and "/api/artifacts/" in url:
            artifact_id = url.rsplit("/api/artifacts/", 1)[1].split("?")[0].strip("/") or None
        return Image(data, url, artifact_id, item.get("revised_prompt"),
                     _sniff_image(data) if data else "image/png")

    def speech(
        self, text: str, model: str = "mock/speech", *, voice: str | None = None,
        response_format: str = "mp3", voice_settings: Mapping[str, float] | None = None,
        **params: Any,
    ) -> Audio:
        """Spoken ``text`` (``POST /v1/audio/speech``, OpenAI's TTS format) as audio bytes."""
        payload: dict[str, Any] = {
            "model": model, "input": text, "response_format": response_format, **params
        }
        if voice:
            payload["voice"] = voice
        if voice_settings:
            payload["voice_settings"] = dict(voice_settings)
        response = self.request("POST", "/v1/audio/speech", json=payload, model=model)
        mime = response.headers.get("content-type", f"audio/{response_format}")
        return Audio(response.content, mime.split(";")[0])

    def voices(self, provider: str = "mock") -> list[dict[str, Any]]:
        """The voices a speech provider offers (``GET /api/voices``)."""
        body = self.get("/api/voices", params={"provider": provider})
        items = body.get("voices", body.get("data", body)) if isinstance(body, dict) else body
        return [v if isinstance(v, dict) else {"id": str(v), "name": str(v)} for v in items]

    # -- jobs and artifacts ------------------------------------------------------------

    def start_job(
        self, kind: str, model: str, prompt: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a long job (``video`` or ``midjourney``); returns ``{"id", "status", ...}``."""
        body = {"kind": kind, "model": model, "prompt": prompt, "params": dict(params or {})}
        result: dict[str, Any] = self.post("/api/jobs", body, model=model)
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/jobs/{job_id}")
        return result

    def wait_job(
        self, job_id: str, *, timeout: float = 600, interval: float = 0.5,
        on_progress: Callable[[dict[str, Any]], Any] | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it succeeds or fails; ``on_progress(job)`` after every poll."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("status") in JOB_DONE:
                return job
            if time.monotonic() > deadline:
                raise GatewayError(
                    f"The job {job_id} did not finish within {timeout:.0f} s.",
                    code="gateway_timeout",
                )
            time.sleep(interval)

    def artifacts(self, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Your images, clips and videos kept by the gateway, newest first."""
        body = self.get("/api/artifacts", params={"kind": kind, "limit": limit})
        items = body.get("items", body.get("data", [])) if isinstance(body, dict) else body
        return list(items)

    def artifact_bytes(self, artifact: str | Mapping[str, Any]) -> tuple[bytes, str]:
        """The content of an artifact (by id, gateway URL or gallery entry) and its type."""
        if isinstance(artifact, Mapping):
            artifact = str(artifact.get("id") or artifact.get("url"))
        if artifact.startswith(("http://", "https://")):
            base = (self.base_url or "").rstrip("/")
            if not base or not artifact.startswith(base + "/"):
                # The token is only ever sent to the gateway.
                raise GatewayError(f"{artifact} is not a gateway address.", code="http_error")
            path = artifact
        else:
            path = f"/api/artifacts/{artifact}"
        response = self.request("GET", path)
        return response.content, response.headers.get("content-type", "").split(";")[0]

    # -- usage ---------------------------------------------------------------------------

    def my_usage(self) -> dict[str, Any]:
        """Your requests, tokens and cost today and this month, with your limits."""
        usage = normalize_usage(self.get("/api/usage/me"))
        if not usage["recent"]:
            usage["recent"] = self.history(limit=10)["items"]
        return usage

    # -- conversations -------------------------------------------------------------------

    def conversations(self, limit: int = 50) -> list[dict[str, Any]]:
        """Your saved conversations, most recent first."""
        return list(self.get("/api/conversations", params={"limit": limit})["items"])

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """One saved conversation with every message of every branch."""
        result: dict[str, Any] = self.get(f"/api/conversations/{conversation_id}")
        return result

    def create_conversation(
        self, *, title: str | None = None, model: str | None = None,
        system_prompt: str | None = None, **session: Any,
    ) -> dict[str, Any]:
        """A new conversation (a session): ``alias``, ``params``, ``memory_mode``
        (auto, explicit, disabled) and ``context_limit`` may be given too."""
        body = {"title": title, "model": model, "system_prompt": system_prompt,
                **{k: v for k, v in session.items() if v is not None}}
        result: dict[str, Any] = self.post("/api/conversations", body)
        return result

    def send_to_session(
        self, session_id: str, content: str, *, parent_message_id: str | None = None,
        new_branch: bool = False, model: str | None = None,
        files: Sequence[str] = (), **params: Any,
    ) -> dict[str, Any]:
        """Send one message to a session; the gateway builds the context, calls the model
        and stores both messages. The reply's ``context`` says exactly what was sent.
        ``files`` are paths of images, text or PDF files to attach."""
        body: dict[str, Any] = {"content": content, "new_branch": new_branch}
        if files:
            body["attachments"] = [file_attachment(path) for path in files]
        if parent_message_id is not None:
            body["parent_message_id"] = parent_message_id
        if model is not None:
            body["model"] = model
        if params:
            body["params"] = params
        result: dict[str, Any] = self.post(f"/api/conversations/{session_id}/send", body,
                                           model=model)
        return result

    def session_tree(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/conversations/{session_id}/tree")
        return result

    # -- memory ---------------------------------------------------------------------------

    def memory(self, *, session: str | None = None, scope: str | None = None,
               type: str | None = None) -> list[dict[str, Any]]:
        """Your memory entries, newest first, optionally filtered."""
        params = {k: v for k, v in {"session": session, "scope": scope, "type": type}.items()
                  if v is not None}
        return list(self.get("/api/memory", params=params)["items"])

    def add_memory(self, content: str, *, session: str | None = None, scope: str = "session",
                   type: str = "fact", importance: int = 3) -> dict[str, Any]:
        body = {"content": content, "session": session, "scope": scope, "type": type,
                "importance": importance}
        result: dict[str, Any] = self.post("/api/memory", body)
        return result

    def update_memory(self, entry_id: str, **fields: Any) -> dict[str, Any]:
        response = self.request("PATCH", f"/api/memory/{entry_id}", json=fields)
        result: dict[str, Any] = response.json()
        return result

    def delete_memory(self, entry_id: str) -> None:
        self.request("DELETE", f"/api/memory/{entry_id}")

    def summarize_to_memory(self, session_id: str, message_id: str | None = None,
                            scope: str = "session") -> dict[str, Any]:
        body = {"session": session_id, "message_id": message_id, "scope": scope}
        result: dict[str, Any] = self.post("/api/memory/summarize", body)
        return result

    def add_message(
        self, conversation_id: str, role: str, content: str,
        parent_message_id: str | None = None, **metering: Any,
    ) -> dict[str, Any]:
        body = {"role": role, "content": content, "parent_message_id": parent_message_id,
                **{k: v for k, v in metering.items() if v is not None}}
        result: dict[str, Any] = self.post(f"/api/conversations/{conversation_id}/messages", body)
        return result

    def update_conversation(self, conversation_id: str, **fields: Any) -> dict[str, Any]:
        response = self.request("PATCH", f"/api/conversations/{conversation_id}", json=fields)
        result: dict[str, Any] = response.json()
        return result

    def delete_conversation(self, conversation_id: str) -> None:
        self.request("DELETE", f"/api/conversations/{conversation_id}")


def file_attachment(path: str, data: bytes | None = None, mime: str | None = None
                    ) -> dict[str, Any]:
    """A file as a session message's attachment (``{"filename", "mime", "data"}``)."""
    import mimetypes
    from pathlib import Path

    name = Path(path).name
    content = Path(path).read_bytes() if data is None else data
    kind = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"filename": name, "mime": kind, "data": base64.b64encode(content).decode()}


def _sniff_image(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data.lstrip().startswith(b"<svg") or b"<svg" in data[:200]:
        return "image/svg+xml"
    return "image/png"
