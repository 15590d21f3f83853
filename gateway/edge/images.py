"""Images sent by callers (inline base64, data URLs, uploads) are checked before any
provider sees them: bytes that are not base64, or not a PNG, JPEG, GIF or WebP image,
are refused in words naming the field, instead of failing somewhere downstream.

Plain functions raising :class:`ValueError`, so pydantic validators and the routers
can both use them; and the pixel size of an image read from its header, which token
estimates need (:mod:`gateway.pricing.tokens`).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable

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


# -- size ---------------------------------------------------------------------------------------

HEADER_BYTES = 4_096  # enough for every header but a JPEG's, which is walked segment by segment


def image_size_of(image: str | None) -> tuple[int, int] | None:
    """The pixel size of an image given as a data URL or bare base64 (None: a URL to fetch,
    or data whose size cannot be read). Only the bytes of the headers are decoded."""
    if not image or image.startswith(("http://", "https://")):
        return None
    if image.startswith("data:"):
        comma = image.find(",")
        if comma < 0:
            return None
        image = image[comma + 1:]
    head = _b64decode(image[: HEADER_BYTES * 4 // 3 + 8])
    if head is None:
        return None
    if not head.startswith(b"\xff\xd8"):
        return image_size(head)
    if any(c in image for c in " \t\r\n"):  # rare: no random access into it
        data = _b64decode(image)
        return None if data is None else image_size(data)

    def read(offset: int, size: int) -> bytes:
        # 3 bytes are 4 characters: decode just the characters that hold these bytes
        first = offset // 3 * 4
        chunk = _b64decode(image[first:(offset + size + 2) // 3 * 4 + 4]) or b""
        return chunk[offset % 3:offset % 3 + size]

    try:
        return _jpeg_size(read)
    except struct.error:
        return None


def _b64decode(text: str) -> bytes | None:
    text = "".join(text.split())
    text = text[: len(text) // 4 * 4]
    if "-" in text or "_" in text:
        text = text.translate(str.maketrans("-_", "+/"))
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG, GIF, WebP or JPEG header, or None."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return _positive(*struct.unpack(">II", data[16:24]))
        if data.startswith((b"GIF87a", b"GIF89a")):
            return _positive(*struct.unpack("<HH", data[6:10]))
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(lambda offset, size: data[offset:offset + size])
    except struct.error:
        return None
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        return _positive(int.from_bytes(data[24:27], "little") + 1,
                         int.from_bytes(data[27:30], "little") + 1)
    return None


SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_SEGMENTS = 1_000  # EXIF, ICC profiles, XMP... come before the frame header


def _jpeg_size(read: Callable[[int, int], bytes]) -> tuple[int, int] | None:
    at = 2
    for _ in range(JPEG_SEGMENTS):
        marker = read(at, 4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return None
        if marker[1] == 0xFF:  # fill byte
            at += 1
            continue
        if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", marker[2:4])
        if marker[1] in SOF_MARKERS:
            height, width = struct.unpack(">HH", read(at + 5, 4))
            return _positive(width, height)
        if length < 2:
            return None
        at += 2 + length
    return None
