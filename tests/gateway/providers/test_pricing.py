"""The price table: exact integer micro-dollars for every unit, unpriced never free, and a
catalog whose every entry is usable."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.pricing import (
    KINDS,
    Catalog,
    TokenUsage,
    image_cost,
    image_token_cost,
    speech_cost,
    task_cost,
    token_cost,
    video_cost,
)
from gateway.providers import PROVIDER_IDS

CATALOG = Catalog.load()


def model(name):
    return CATALOG.get(name)


@pytest.mark.parametrize(("name", "usage", "micro"), [
    ("gpt-4o-mini", TokenUsage(1_000_000, 1_000_000), 750_000),
    ("gpt-4o-mini", TokenUsage(3, 1), 1),  # 0.45 + 0.60 = 1.05 → 1, rounded once at the end
    ("o4-mini", TokenUsage(2000, 500, cached_tokens=1000, reasoning_tokens=300), 3575),
    ("claude-haiku-4-5", TokenUsage(1000, 50, cached_tokens=300, cache_write_tokens=200), 1030),
    ("gemini-2.5-flash", TokenUsage(1000, 300, cached_tokens=500, reasoning_tokens=100), 938),
])
def test_token_costs(name, usage, micro):
    cost = token_cost(model(name), usage)
    assert (cost.micro_usd, cost.status) == (micro, "priced")


def test_estimated_usage_is_flagged():
    assert token_cost(model("gpt-4o-mini"), TokenUsage(10, 10,
                                                       estimated=True)).status == "estimated"


def test_media_units():
    dalle = model("dall-e-3")
    assert image_cost(dalle, size="1792x1024", quality="hd", count=2).micro_usd == 240_000
    assert image_cost(dalle, size="1024x1024", quality=None, count=1).micro_usd == 40_000
    unknown = image_cost(dalle, size="512x512", quality="hd", count=1)
    assert (unknown.micro_usd, unknown.status) == (None, "unpriced")
    assert image_token_cost(model("gpt-image-1"), text_tokens=10, image_tokens=100,
                            output_tokens=4160).micro_usd == 50 + 1000 + 166_400
    assert speech_cost(model("tts-1"), 1000).micro_usd == 15_000
    assert speech_cost(model("eleven_multilingual_v2"), 16).micro_usd == 1600
    assert speech_cost(model("gpt-4o-mini-tts"), 1000).micro_usd == 20_000  # conservative
    assert video_cost(model("kling-v2-1"), seconds=5, mode="std").micro_usd == 280_000
    assert video_cost(model("kling-v2-1"), seconds=10, mode="pro").micro_usd == 980_000
    assert task_cost(model("midjourney")).micro_usd == 40_000
    assert task_cost(model("mock/midjourney")).micro_usd == 0


def test_catalog_is_versioned_and_every_entry_usable():
    assert CATALOG.version and CATALOG.checked
    for name, info in CATALOG.models.items():
        assert info.provider in PROVIDER_IDS and info.kind in KINDS, name
        assert info.streaming == (info.kind == "chat"), name
        prices = [*info.prices.values(), *info.video_prices.values(),
                  *(p for q in info.image_prices.values() for p in q.values())]
        assert all(isinstance(p, Decimal) and p >= 0 for p in prices), name
        if info.provider == "mock":
            assert prices and all(p == 0 for p in prices), name
        elif not prices:
            assert "unpriced" in (info.description or ""), f"{name}: say why it has no price"
