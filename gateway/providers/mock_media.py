"""The mock provider's media: real files, made offline in pure Python, deterministic.

- ``mock/embed``: 64-dimension unit vectors from hashed words and trigrams, so
  texts that share words are near each other;
- ``mock/image``: a PNG (zlib) of diagonal colour bands chosen by the prompt, at
  the requested size (up to 1024x1024);
- ``mock/speech``: a WAV of short tones, one per word, as long as the text;
- ``mock/video``: an asynchronous job whose result is an animated GIF (honestly
  named: not a video file);
- ``mock/midjourney``: an asynchronous job whose result is a 2x2 grid PNG and
  its four images.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import math
import re
import secrets
import struct
import time
import wave
import zlib
from dataclasses import dataclass

from gateway.keypool import ProviderKey
from gateway.providers.base import JobSpec, TaskState

DIMENSIONS = 64
MAX_SIDE = 1024
WORD = re.compile(r"[a-z0-9가-힣]+")


def _digest(*parts: str | bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.digest()


# -- embeddings ---------------------------------------------------------------------------


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    words = WORD.findall(text.lower())
    features = [(w, 1.0) for w in words]
    features += [(w[i:i + 3], 0.35) for w in words for i in range(max(0, len(w) - 2))]
    for feature, weight in features:
        digest = _digest(feature)
        for k in range(2):
            index = int.from_bytes(digest[2 * k:2 * k + 2], "big") % dimensions
            sign = 1.0 if digest[8 + k] & 1 else -1.0
            vector[index] += sign * weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        return [1.0] + [0.0] * (dimensions - 1)
    return [v / norm for v in vector]


def floats_base64(values: list[float]) -> str:
    import base64

    return base64.b64encode(array.array("f", values).tobytes()).decode()


# -- images -----------------------------------------------------------------------------------


def parse_size(size: str | None, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    if not size or size == "auto":
        return default
    match = re.fullmatch(r"(\d{1,5})x(\d{1,5})", size)
    if not match:
        raise ValueError(f"size must look like 1024x1024, not {size!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise ValueError(f"each side must be between 16 and {MAX_SIDE} pixels")
    return width, height


def _palette(seed: bytes, count: int) -> list[tuple[int, int, int]]:
    stops = [tuple(seed[i:i + 3]) for i in (0, 3, 6, 9)]
    colors = []
    for i in range(count):
        t = i / count * (len(stops) - 1)
        a, b = stops[int(t)], stops[min(int(t) + 1, len(stops) - 1)]
        f = t - int(t)
        colors.append(tuple(int(a[c] + (b[c] - a[c]) * f) for c in range(3)))
    return colors  # type: ignore[return-value]


def _strip(seed: bytes, length: int) -> bytes:
    """Colour of each diagonal x + y: a gradient with stripes whose period the seed picks."""
    colors = _palette(seed, 256)
    period = 24 + seed[12] % 96
    stripe = 6 + seed[13] % 18
    out = bytearray()
    for i in range(length):
        r, g, b = colors[(i * 256 // max(1, length)) % 256]
        if (i % period) < stripe:
            r, g, b = 255 - r, 255 - g, 255 - b
        out += bytes((r, g, b))
    return bytes(out)


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\0" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def _rows(seed: bytes, width: int, height: int) -> list[bytes]:
    strip = _strip(seed, width + height)
    return [strip[3 * y:3 * (y + width)] for y in range(height)]


def png(prompt: str, width: int, height: int, salt: bytes = b"") -> bytes:
    """A deterministic PNG for a prompt (and, for edits, the input image's bytes)."""
    return _png(width, height, _rows(_digest(prompt, salt), width, height))


def grid_png(prompt: str, tile_w: int, tile_h: int) -> tuple[bytes, list[bytes]]:
    """A Midjourney-style 2x2 grid and its four images."""
    tiles = [_rows(_digest(prompt, str(i)), tile_w, tile_h) for i in range(4)]
    rows = [tiles[0][y] + tiles[1][y] for y in range(tile_h)]
    rows += [tiles[2][y] + tiles[3][y] for y in range(tile_h)]
    return _png(2 * tile_w, 2 * tile_h, rows), [_png(tile_w, tile_h, t) for t in tiles]


def aspect_size(aspect: str | None, long_side: int) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", aspect or "1:1")
    w, h = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
    if w <= 0 or h <= 0:
        w, h = 1, 1
    if w >= h:
        return long_side, max(16, round(long_side * h / w))
    return max(16, round(long_side * w / h)), long_side


# -- speech -------------------------------------------------------------------------------------

RATE = 8000


def _wav_file(samples: array.array[int]) -> bytes:
    """16-bit mono samples at ``RATE`` as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def wav(text: str, voice: str = "mock") -> bytes:
    """One short tone per word (pitch from the word and the voice), as long as the text."""
    words = WORD.findall(text.lower()) or ["..."]
    samples = array.array("h")
    for word in words[:400]:
        digest = _digest(voice, word)
        frequency = 220 + int.from_bytes(digest[:2], "big") % 660
        length = int(RATE * min(0.6, 0.04 * len(word) + 0.08))
        period = [int(9000 * math.sin(2 * math.pi * frequency * i / RATE))
                  for i in range(RATE // math.gcd(RATE, frequency))]
        tone = (period * (length // len(period) + 1))[:length]
        fade = min(200, length // 4)
        for i in range(fade):
            tone[i] = tone[i] * i // fade
            tone[-1 - i] = tone[-1 - i] * i // fade
        samples.extend(tone)
        samples.extend([0] * (RATE // 25))
    return _wav_file(samples)


# -- music (the mock's "Suno") ------------------------------------------------------------------

PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)


def music_wav(prompt: str, seconds: int, *, style: str = "", instrumental: bool = True) -> bytes:
    """A short tune from the prompt: a pentatonic melody over a bass note per bar, 8 kHz mono.
    The same prompt and style make the same tune; a sung (not instrumental) one gets a
    vibrato, the mock's idea of a voice."""
    digest = _digest("music", prompt, style)
    tempo = 96 + digest[0] % 48  # beats per minute
    beat = int(RATE * 60 / tempo)
    root = 196 + digest[1] % 96  # Hz
    total = RATE * seconds
    samples = array.array("h", bytes(2 * total))
    for start in range(0, total, beat):
        index = start // beat
        step = PENTATONIC[digest[2 + index % 30] % len(PENTATONIC)]
        melody = root * 2 ** (step / 12)
        bass = root / 2 * 2 ** (PENTATONIC[digest[(index // 4) % 32] % 4] / 12)
        length = min(beat, total - start)
        for i in range(length):
            t = i / RATE
            envelope = min(1.0, i / 80) * (1 - i / length) ** 1.5
            wobble = 0 if instrumental else 0.004 * math.sin(2 * math.pi * 5.5 * t)
            value = (6000 * envelope * math.sin(2 * math.pi * melody * t * (1 + wobble))
                     + 2500 * math.sin(2 * math.pi * bass * (start + i) / RATE))
            samples[start + i] = int(value)
    return _wav_file(samples)


# -- animated GIF (the mock's "video") -----------------------------------------------------------


def gif(prompt: str, width: int, height: int, frames: int = 12) -> bytes:
    """An animated GIF of moving colour bands. LZW is kept at 8-bit codes by clearing the
    table every 120 codes, which every decoder reads; compression is not the point."""
    seed = _digest(prompt)
    palette = _palette(seed, 128)
    out = bytearray(b"GIF89a")
    out += struct.pack("<HHBBB", width, height, 0xF6, 0, 0)  # global table of 128 colours
    out += b"".join(bytes(c) for c in palette)
    out += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    strip = bytes((i * 128 // (width + height)) % 128 for i in range(2 * (width + height)))
    for frame in range(frames):
        shift = frame * (width + height) // frames
        pixels = b"".join(strip[shift + y:shift + y + width] for y in range(height))
        out += b"!\xf9\x04\x04\x08\x00\x00\x00"  # 80 ms per frame
        out += b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
        out += b"\x07"  # LZW minimum code size: 7 bits → codes are 8 bits wide
        codes = bytearray()
        for start in range(0, len(pixels), 120):
            codes.append(128)  # clear
            codes += pixels[start:start + 120]
        codes.append(129)  # end of information
        for start in range(0, len(codes), 255):
            block = codes[start:start + 255]
            out += bytes((len(block),)) + block
        out += b"\x00"
    out += b";"
    return bytes(out)


# -- jobs ---------------------------------------------------------------------------------------


@dataclass
class _Task:
    spec: JobSpec
    started: float


class MockJobs:
    """Video, Midjourney-style and music jobs that take ``seconds`` and make real (small)
    files."""

    id = "mock"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._tasks: dict[str, _Task] = {}

    async def submit(self, key: ProviderKey | None, spec: JobSpec, timeout: float) -> str:
        now = time.monotonic()
        for stale in [t for t, task in self._tasks.items() if now - task.started > 3600]:
            del self._tasks[stale]
        task_id = "mock-" + secrets.token_hex(8)
        self._tasks[task_id] = _Task(spec, now)
        return task_id

    async def poll(self, key: ProviderKey | None, task_id: str, spec: JobSpec,
                   timeout: float) -> TaskState:
        task = self._tasks.get(task_id)
        if task is None:
            return TaskState("failed", error="the mock forgot this task (the gateway restarted)")
        elapsed = time.monotonic() - task.started
        if elapsed < self.seconds:
            return TaskState("running", round(elapsed / self.seconds, 3) if self.seconds else 1.0)
        if spec.kind == "midjourney":
            urls = [f"mock://{task_id}/grid"] + [f"mock://{task_id}/{i}" for i in range(4)]
            return TaskState("succeeded", 1.0, urls)
        if spec.kind == "music":
            return TaskState("succeeded", 1.0, [f"mock://{task_id}/music"],
                             seconds=float(spec.params.get("duration") or 8))
        return TaskState("succeeded", 1.0, [f"mock://{task_id}/video"],
                         seconds=float(spec.params.get("duration") or 5))

    async def download(self, key: ProviderKey | None, url: str,
                       timeout: float) -> tuple[bytes, str]:
        task_id, _, part = url.removeprefix("mock://").partition("/")
        task = self._tasks.get(task_id)
        if task is None:
            raise LookupError(url)
        spec = task.spec
        loop = asyncio.get_running_loop()
        if spec.kind == "midjourney":
            w, h = aspect_size(str(spec.params.get("aspect_ratio") or "1:1"), 256)
            grid, tiles = await loop.run_in_executor(None, grid_png, spec.prompt, w, h)
            return (grid if part == "grid" else tiles[int(part)]), "image/png"
        if spec.kind == "music":
            p = spec.params
            data = await loop.run_in_executor(
                None, lambda: music_wav(spec.prompt, int(p.get("duration") or 8),
                                        style=str(p.get("style") or ""),
                                        instrumental=bool(p.get("instrumental", True))))
            return data, "audio/wav"
        w, h = aspect_size(str(spec.params.get("aspect_ratio") or "16:9"), 160)
        return await loop.run_in_executor(None, gif, spec.prompt, w, h), "image/gif"

    async def aclose(self) -> None:
        self._tasks.clear()
