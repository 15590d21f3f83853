"""Files on a session's message: images sent as image input, text and PDF sent as text.

Limits, in words (docs/sessions.md says the same):

- at most :data:`MAX_FILES` files on one message;
- an image at most :data:`MAX_IMAGE_BYTES` (5 MB), PNG, JPEG, GIF or WebP, and only to a
  model that takes images (its catalog ``modalities``);
- a text or PDF file at most :data:`MAX_FILE_BYTES` (10 MB) and at most
  :data:`MAX_WORDS` words of text (20,000, about 40 pages) once extracted; a PDF's text
  is read with ``pypdf``, and a PDF with no text layer (a scan) is refused.

Each file is kept as an artifact with its original filename and MIME type, linked to
the message (``messages.attachments``, and the artifact's ``session_id`` and
``meta.message_id``). What the model is sent, and so what is metered, includes the
files: an image is counted by the admission with the vendor's documented image-token
formula and by the vendor's own usage; extracted text counts as prompt text.

In later turns of the branch an earlier document's text is sent again and an earlier
image is replaced by the words ``[image: <filename>]``.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.history.artifacts import ArtifactStore, NewArtifact
from gateway.pricing import ModelInfo

MAX_FILES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_WORDS = 20_000
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv", "application/json"})
PDF = "application/pdf"


@dataclass
class Attachment:
    filename: str
    mime: str
    data: bytes
    text: str | None = None  # extracted, for text and PDF
    pages: int | None = None

    @property
    def is_image(self) -> bool:
        return self.mime in IMAGE_TYPES

    def part(self) -> dict[str, Any]:
        """The message content part the model is sent for this file."""
        if self.is_image:
            url = f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"
            return {"type": "image_url", "image_url": {"url": url}}
        return {"type": "text", "text": document_text(self.filename, self.text or "")}


def document_text(filename: str, text: str) -> str:
    return f"Attached file {filename}:\n{text}"


def _words(text: str) -> int:
    return len(text.split())


def _pdf_text(data: bytes, filename: str, param: str) -> tuple[str, int]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as error:
        raise InvalidRequest(f"{filename} could not be read as a PDF ({error}).",
                             param=param) from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InvalidRequest(
            f"{filename} has no text to read (a scanned PDF?). Attach it as an image instead.",
            param=param)
    return text, len(pages)


def decode(files: list[dict[str, Any]], model: ModelInfo | None, model_name: str
           ) -> list[Attachment]:
    """Check and read the files of one message (see the module docstring for the limits)."""
    if len(files) > MAX_FILES:
        raise InvalidRequest(f"Attach at most {MAX_FILES} files to one message.",
                             param="attachments")
    out: list[Attachment] = []
    for index, item in enumerate(files):
        param = f"attachments[{index}]"
        filename, mime = item["filename"], item["mime"].lower()
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{filename}: data must be the file in base64.",
                                 param=param + ".data") from None
        if mime in IMAGE_TYPES:
            if len(data) > MAX_IMAGE_BYTES:
                raise PayloadTooLarge(f"{filename} is larger than 5 MB; images may be 5 MB at "
                                      "most.", param=param)
            if model is not None and "image" not in model.modalities:
                raise InvalidRequest(f"The model '{model_name}' does not read images; pick one "
                                     "that does (GET /v1/models lists its modalities).",
                                     param=param)
            out.append(Attachment(filename, mime, data))
            continue
        if len(data) > MAX_FILE_BYTES:
            raise PayloadTooLarge(f"{filename} is larger than 10 MB; text and PDF files may be "
                                  "10 MB at most.", param=param)
        if mime == PDF:
            text, pages = _pdf_text(data, filename, param)
        elif mime in TEXT_TYPES or mime.startswith("text/"):
            try:
                text, pages = data.decode("utf-8"), None
            except UnicodeDecodeError:
                raise InvalidRequest(f"{filename} is not UTF-8 text.", param=param) from None
            text = text.replace("\x00", "")
        else:
            raise InvalidRequest(
                f"{filename}: files of type {mime!r} cannot be attached; attach images (PNG, "
                "JPEG, GIF, WebP), text or PDF.", param=param + ".mime")
        if _words(text) > MAX_WORDS:
            raise PayloadTooLarge(
                f"{filename} has {_words(text)} words; a file may have {MAX_WORDS} words at "
                "most (about 40 pages). Attach a shorter part.", param=param)
        out.append(Attachment(filename, mime, data, text, pages))
    return out


async def keep(store: ArtifactStore, files: list[Attachment], *, user: str, tenant: str,
               session: str, message_id: str) -> list[dict[str, Any]]:
    """Each file kept as an artifact; what the message records of them."""
    kept = []
    for f in files:
        meta: dict[str, Any] = {"filename": f.filename, "message_id": message_id}
        if f.text is not None:
            meta["words"] = _words(f.text)
        if f.pages is not None:
            meta["pages"] = f.pages
        row = await store.save(NewArtifact(
            user=user, tenant=tenant, mime=f.mime, data=f.data, session_id=session,
            meta=meta, kind="image" if f.is_image else "document"))
        record = {"artifact_id": row["id"], "filename": f.filename, "mime": f.mime,
                  "size": len(f.data), **{k: v for k, v in meta.items()
                                          if k in ("words", "pages")}}
        if f.text is not None:
            record["text"] = f.text
        kept.append(record)
    return kept


def earlier_content(text: str, attachments: list[dict[str, Any]] | None) -> str:
    """An earlier message's content as later turns send it (see the module docstring)."""
    if not attachments:
        return text
    parts = [text]
    for a in attachments:
        if a.get("text") is not None:
            parts.append(document_text(a["filename"], a["text"]))
        else:
            parts.append(f"[image: {a['filename']}]")
    return "\n\n".join(parts)
