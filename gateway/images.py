"""Images sent by callers (inline base64, data URLs, uploads) are checked before any
provider sees them: bytes that are not base64, or not a PNG, JPEG, GIF or WebP image,
are refused in words naming the field, instead of failing somewhere downstream.

Plain functions raising :class:`ValueError`, so pydantic validators and the routers
can both use them.
"""

from __future__ import annotations

import base64
import binascii
import re

FORMATS = "PNG, JPEG, GIF or WebP"
DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*),(?P<data>.*)$",
                      re.DOTALL)


def sniff(data: bytes) -> str | None:
    """The image type of some bytes, from their first bytes; None when not an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_image(data: bytes) -> str:
    """The image's type, or ValueError saying what is wrong with it."""
    if not data:
        raise ValueError("the image is empty")
    kind = sniff(data)
    if kind is None:
        raise ValueError(f"the bytes sent are not an image (send a {FORMATS} file)")
    return kind


def decode_base64(text: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, whitespace ignored)."""
    compact = re.sub(r"\s+", "", text)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the image data is not valid base64") from None


def check_base64_image(text: str) -> str:
    """Base64 text holding an image; returns its type."""
    return check_image(decode_base64(text))


def check_data_url(url: str) -> None:
    """An image given as a URL: a ``data:`` URL must hold a base64 image; other URLs are
    fetched by the provider and left to it."""
    if not url.startswith("data:"):
        return
    match = DATA_URL.match(url)
    if match is None or ";base64" not in (match.group("params") or ""):
        raise ValueError("a data URL image must look like data:image/png;base64,<data>")
    check_base64_image(match.group("data"))
