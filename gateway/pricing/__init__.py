"""Model catalog and prices: a data file in the repository, read once.

Prices are US dollars per million tokens, which is exactly micro-dollars per
token, so a cost in integer micro-dollars is a sum of products rounded once.
A model with no price is ``unpriced``, never free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens served from the provider's cache
    reasoning_tokens: int = 0  # part of completion_tokens spent thinking
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
    description: str | None = None

    @property
    def priced(self) -> bool:
        return "input_per_mtok" in self.prices or "output_per_mtok" in self.prices

    def public(self) -> dict[str, Any]:
        """The ``/v1/models`` entry: OpenAI's fields plus the classroom's metadata."""
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
            "pricing": {k: str(v) for k, v in self.prices.items()} or None,
            "description": self.description,
        }


@dataclass(frozen=True)
class Cost:
    micro_usd: int | None
    status: str  # priced, unpriced, estimated


def token_cost(model: ModelInfo, usage: Usage) -> Cost:
    if not model.priced:
        return Cost(None, "unpriced")
    p = model.prices
    zero = Decimal(0)
    input_price = p.get("input_per_mtok", zero)
    cached_price = p.get("cached_input_per_mtok", input_price)
    output_price = p.get("output_per_mtok", zero)
    reasoning_price = p.get("reasoning_per_mtok", output_price)
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    total = (
        (usage.prompt_tokens - cached) * input_price
        + cached * cached_price
        + (usage.completion_tokens - reasoning) * output_price
        + reasoning * reasoning_price
    )
    micro = int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return Cost(micro, "estimated" if usage.estimated else "priced")


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
            models[model_id] = ModelInfo(
                id=model_id,
                provider=spec["provider"],
                kind=spec.get("kind", "chat"),
                context_window=spec.get("context_window"),
                max_output_tokens=spec.get("max_output_tokens"),
                modalities=tuple(spec.get("modalities", ["text"])),
                streaming=spec.get("streaming", True),
                prices={k: Decimal(str(v)) for k, v in (spec.get("prices") or {}).items()},
                description=spec.get("description"),
            )
        return cls(models, raw["version"], raw["checked"])

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)
