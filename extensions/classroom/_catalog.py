"""What the gateway says about each model, and what each provider's API accepts.

``GET /v1/models`` lists the models your school allows, with the classroom's
metadata: provider, kind (chat, embedding, image, speech, video), context
window, output limit and prices. :class:`Catalog` wraps that list; the
widgets use it to fill their model pickers and to put a price on a reply.

``PARAMETERS`` is the other half: which sampling parameters each provider's
own API has (Anthropic has ``top_k`` but no penalties, OpenAI the opposite,
Gemini both), so a widget offers only the sliders that mean something.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The kinds a model can have, and the names the gateway may use for each.
KINDS: dict[str, tuple[str, ...]] = {
    "chat": ("chat", "text", "completion"),
    "embedding": ("embedding", "embeddings", "embed"),
    "image": ("image", "images", "image_generation"),
    "speech": ("speech", "tts", "audio"),
    "video": ("video",),
}


@dataclass(frozen=True)
class Parameter:
    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    default: float
    help: str


TEMPERATURE = Parameter(
    "temperature", "temperature", 0.0, 2.0, 0.05, 1.0,
    "Randomness: 0 picks the likeliest next token every time; higher values pick less "
    "likely ones more often.",
)
TOP_P = Parameter(
    "top_p", "top_p", 0.0, 1.0, 0.05, 1.0,
    "Nucleus sampling: only the most likely tokens that together make up this share of "
    "the probability are considered.",
)
TOP_K = Parameter(
    "top_k", "top_k", 1, 100, 1, 40,
    "Only the k most likely next tokens are considered.",
)
MAX_TOKENS = Parameter(
    "max_tokens", "max_tokens", 1, 4096, 1, 256,
    "The longest reply allowed, in tokens; a reply cut short ends with finish_reason 'length'.",
)
PRESENCE_PENALTY = Parameter(
    "presence_penalty", "presence", -2.0, 2.0, 0.1, 0.0,
    "Positive values push the model towards tokens that have not appeared yet (new topics).",
)
FREQUENCY_PENALTY = Parameter(
    "frequency_penalty", "frequency", -2.0, 2.0, 0.1, 0.0,
    "Positive values make the model repeat the same tokens less often.",
)
ALL_PARAMETERS = (TEMPERATURE, TOP_P, TOP_K, MAX_TOKENS, PRESENCE_PENALTY, FREQUENCY_PENALTY)

#: The sampling parameters each provider's own API accepts, and its temperature range.
PARAMETERS: dict[str, tuple[tuple[str, ...], float]] = {
    "openai": (
        ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty"), 2.0
    ),
    "anthropic": (("temperature", "top_p", "top_k", "max_tokens"), 1.0),
    "google": (
        ("temperature", "top_p", "top_k", "max_tokens", "presence_penalty", "frequency_penalty"),
        2.0,
    ),
    # The practice models accept everything, so every slider can be tried for free.
    "mock": (tuple(p.name for p in ALL_PARAMETERS), 2.0),
}

#: Presets for the Playground: the same three every provider understands.
PRESETS: dict[str, dict[str, float]] = {
    "precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 20},
    "balanced": {"temperature": 0.7, "top_p": 1.0, "top_k": 40},
    "creative": {"temperature": 1.2, "top_p": 1.0, "top_k": 80},
}


def provider_of(model: str) -> str:
    """The provider a model name belongs to, by the gateway's naming rules."""
    name = model.lower()
    if name.startswith("mock/"):
        return "mock"
    if name.startswith(("claude",)):
        return "anthropic"
    if name.startswith(("gemini", "imagen", "veo")):
        return "google"
    if name.startswith("eleven"):
        return "elevenlabs"
    if name.startswith("kling"):
        return "kling"
    if name.startswith("midjourney"):
        return "midjourney"
    return "openai"


def parameters_for(provider: str) -> list[Parameter]:
    """The sliders that mean something for ``provider``'s API (temperature range adjusted)."""
    names, max_temperature = PARAMETERS.get(provider, PARAMETERS["openai"])
    out = []
    for parameter in ALL_PARAMETERS:
        if parameter.name not in names:
            continue
        if parameter.name == "temperature" and max_temperature != parameter.maximum:
            parameter = Parameter(**{**parameter.__dict__, "maximum": max_temperature})
        out.append(parameter)
    return out


@dataclass(frozen=True)
class ModelInfo:
    id: str
    provider: str
    kind: str = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    modalities: tuple[str, ...] = ("text",)
    pricing: Mapping[str, float] = field(default_factory=dict)
    description: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelInfo:
        model_id = str(data["id"])
        pricing = {}
        for key, value in (data.get("pricing") or {}).items():
            try:
                pricing[key] = float(value)
            except (TypeError, ValueError):
                continue
        return cls(
            id=model_id,
            provider=str(data.get("provider") or data.get("owned_by") or provider_of(model_id)),
            kind=normalize_kind(str(data.get("kind") or "chat")),
            context_window=data.get("context_window"),
            max_output_tokens=data.get("max_output_tokens"),
            modalities=tuple(data.get("modalities") or ("text",)),
            pricing=pricing,
            description=data.get("description"),
        )

    @property
    def is_mock(self) -> bool:
        return self.provider == "mock" or self.id.startswith("mock/")

    def token_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """US dollars for a chat reply, from the list prices; None when the model is unpriced."""
        if "input_per_mtok" not in self.pricing and "output_per_mtok" not in self.pricing:
            return None
        return (
            prompt_tokens * self.pricing.get("input_per_mtok", 0.0)
            + completion_tokens * self.pricing.get("output_per_mtok", 0.0)
        ) / 1_000_000


def normalize_kind(kind: str) -> str:
    lowered = kind.lower()
    for name, aliases in KINDS.items():
        if lowered in aliases:
            return name
    return lowered


class Catalog:
    """The models the gateway offers this user, by id and by kind."""

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self.models = {m.id: m for m in models}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Catalog:
        return cls(ModelInfo.from_json(item) for item in body.get("data") or [] if "id" in item)

    def __contains__(self, model: object) -> bool:
        return model in self.models

    def __len__(self) -> int:
        return len(self.models)

    def get(self, model: str) -> ModelInfo:
        """The model's metadata; a name the gateway did not list gets a guess from its name."""
        return self.models.get(model) or ModelInfo(model, provider_of(model))

    def ids(self, kind: str | None = None, *, mock_only: bool = False) -> list[str]:
        """Model names of one kind (all kinds when None); only practice models if asked."""
        wanted = None if kind is None else normalize_kind(kind)
        return [
            m.id for m in self.models.values()
            if (wanted is None or m.kind == wanted) and (m.is_mock or not mock_only)
        ]

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        return self.get(model).token_cost(prompt_tokens, completion_tokens)

    def cheapest(self, kind: str = "chat") -> str | None:
        """The cheapest priced model of a kind (a practice model counts as free)."""
        priced = [
            (m.token_cost(1000, 1000), m.id) for m in self.models.values()
            if m.kind == normalize_kind(kind) and m.token_cost(1000, 1000) is not None
        ]
        return min(priced)[1] if priced else None


def format_cost(usd: float | None) -> str:
    """A price a student can read: ``free``, ``$0.000123``, ``$1.20``, or ``unpriced``."""
    if usd is None:
        return "unpriced"
    if usd == 0:
        return "free"
    if usd < 0.01:
        return f"${usd:.6f}"
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"
