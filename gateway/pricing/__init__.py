"""Model catalog and prices: a data file in the repository, read once.

Token prices are US dollars per million tokens, which is exactly micro-dollars
per token, so a cost in integer micro-dollars is a sum of products rounded once.
Media are priced per unit in US dollars (an image by size and quality, speech
per thousand characters, video per second by mode, a Midjourney-style task per
task) and multiplied by a million, again rounded once.

A model with no price for what it did is ``unpriced`` (cost ``None``), never free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.json")
MILLION = Decimal(1_000_000)
TOKEN_PRICES = ("input_per_mtok", "output_per_mtok")
KINDS = ("chat", "embedding", "image", "speech", "video", "midjourney")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens served from the provider's cache
    reasoning_tokens: int = 0  # part of completion_tokens spent thinking
    cache_write_tokens: int = 0  # part of prompt_tokens written to the cache (Anthropic)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelInfo:
    id: str
    provider: str
    kind: str = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    modalities: tuple[str, ...] = ("text",)
    streaming: bool = True
    prices: dict[str, Decimal] = field(default_factory=dict)
    image_prices: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    video_prices: dict[str, Decimal] = field(default_factory=dict)
    description: str | None = None
    upstream: str | None = None  # the vendor's own name, when the classroom's differs

    @property
    def priced(self) -> bool:
        return any(k in self.prices for k in TOKEN_PRICES)

    @property
    def vendor_model(self) -> str:
        return self.upstream or self.id

    def public(self) -> dict[str, Any]:
        """The ``/v1/models`` entry: OpenAI's fields plus the classroom's metadata."""
        pricing: dict[str, Any] = {k: str(v) for k, v in self.prices.items()}
        if self.image_prices:
            pricing["per_image"] = {
                size: {q: str(p) for q, p in qualities.items()}
                for size, qualities in self.image_prices.items()
            }
        if self.video_prices:
            pricing["per_second"] = {mode: str(p) for mode, p in self.video_prices.items()}
        return {
            "id": self.id,
            "object": "model",
            "created": 0,
            "owned_by": self.provider,
            "provider": self.provider,
            "kind": self.kind,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "modalities": list(self.modalities),
            "streaming": self.streaming,
            "pricing": pricing or None,
            "description": self.description,
        }


@dataclass(frozen=True)
class Cost:
    micro_usd: int | None
    status: str  # priced, unpriced, estimated


UNPRICED = Cost(None, "unpriced")


def _micro(total: Decimal, estimated: bool = False) -> Cost:
    return Cost(int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
                "estimated" if estimated else "priced")


def token_cost(model: ModelInfo, usage: Usage) -> Cost:
    if not model.priced:
        return UNPRICED
    p = model.prices
    zero = Decimal(0)
    input_price = p.get("input_per_mtok", zero)
    cached_price = p.get("cached_input_per_mtok", input_price)
    write_price = p.get("cache_write_per_mtok", input_price)
    output_price = p.get("output_per_mtok", zero)
    reasoning_price = p.get("reasoning_per_mtok", output_price)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    total = (
        (usage.prompt_tokens - cached - written) * input_price
        + cached * cached_price
        + written * write_price
        + (usage.completion_tokens - reasoning) * output_price
        + reasoning * reasoning_price
    )
    return _micro(total, usage.estimated)


def image_cost(model: ModelInfo, *, size: str, quality: str | None, count: int) -> Cost:
    """Per-image price by size and quality; sizes or qualities the table lacks are unpriced."""
    flat = model.prices.get("per_image")
    if flat is not None:
        return _micro(flat * MILLION * count)
    by_quality = model.image_prices.get(size)
    if by_quality is None:
        return UNPRICED
    price = by_quality.get(quality or "") or by_quality.get("standard") or by_quality.get("auto")
    if price is None:
        if len(by_quality) != 1:
            return UNPRICED
        price = next(iter(by_quality.values()))
    return _micro(price * MILLION * count)


def image_token_cost(
    model: ModelInfo, *, text_tokens: int, image_tokens: int, output_tokens: int
) -> Cost:
    """gpt-image models bill the tokens they report: text in, image in, image out."""
    p = model.prices
    if "output_per_mtok" not in p:
        return UNPRICED
    text_price = p.get("input_per_mtok", Decimal(0))
    image_price = p.get("image_input_per_mtok", text_price)
    return _micro(
        text_tokens * text_price + image_tokens * image_price + output_tokens * p["output_per_mtok"]
    )


def speech_cost(model: ModelInfo, characters: int) -> Cost:
    price = model.prices.get("per_1k_chars")
    if price is None:
        return UNPRICED
    return _micro(price * MILLION * characters / 1000)


def video_cost(model: ModelInfo, *, seconds: float, mode: str | None) -> Cost:
    price = model.video_prices.get(mode or "std") or model.video_prices.get("std")
    if price is None:
        return UNPRICED
    return _micro(price * MILLION * Decimal(str(seconds)))


def task_cost(model: ModelInfo, tasks: int = 1) -> Cost:
    price = model.prices.get("per_task")
    if price is None:
        return UNPRICED
    return _micro(price * MILLION * tasks)


def worst_case_tokens(model: ModelInfo, prompt_tokens: int, max_output: int) -> int | None:
    """The most a chat call can cost, reserved by admission before the call."""
    if not model.priced:
        return None
    cost = token_cost(model, Usage(prompt_tokens=prompt_tokens, completion_tokens=max_output))
    return cost.micro_usd


def _decimals(values: dict[str, Any] | None) -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in (values or {}).items()}


class Catalog:
    def __init__(self, models: dict[str, ModelInfo], version: str, checked: str) -> None:
        self.models = models
        self.version = version
        self.checked = checked

    @classmethod
    def load(cls, path: Path = CATALOG_FILE) -> Catalog:
        raw = json.loads(path.read_text(encoding="utf-8"))
        models = {}
        for model_id, spec in raw["models"].items():
            kind = spec.get("kind", "chat")
            if kind not in KINDS:
                raise ValueError(f"{path}: model {model_id}: unknown kind {kind!r}")
            models[model_id] = ModelInfo(
                id=model_id,
                provider=spec["provider"],
                kind=kind,
                context_window=spec.get("context_window"),
                max_output_tokens=spec.get("max_output_tokens"),
                modalities=tuple(spec.get("modalities", ["text"])),
                streaming=spec.get("streaming", kind == "chat"),
                prices=_decimals(spec.get("prices")),
                image_prices={
                    size: _decimals(qualities)
                    for size, qualities in (spec.get("image_prices") or {}).items()
                },
                video_prices=_decimals(spec.get("video_prices")),
                description=spec.get("description"),
                upstream=spec.get("upstream"),
            )
        return cls(models, raw["version"], raw["checked"])

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)
