"""Model catalog and prices: a data file in the repository, read once.

Token prices are US dollars per million tokens, which is exactly micro-dollars
per token, so a cost in integer micro-dollars is a sum of products rounded once.
Media are priced per unit in US dollars (an image by size and quality, speech
per thousand characters, video per second by mode, a Midjourney-style task per
task) and multiplied by a million, again rounded once.

A model with no price for what it did is ``unpriced`` (cost ``None``), never free,
and never a way round a budget: admission refuses an unpriced model to every caller
who has a dollar limit (``model_unpriced``).

A name resolves to a price in this order (:meth:`Catalog.resolve`):

1. a model of the catalog, or one an admin priced in ``CLASSROOM_PRICES_FILE``;
2. an alias the catalog lists for a model (``"aliases"``);
3. a dated snapshot of one of those: the vendor's suffixes ``-2025-04-14`` (OpenAI),
   ``-20250929`` (Anthropic), ``-001`` and ``-preview-09-2025`` (Google), and
   ``-latest``. It is priced as its base model, and the run records the base
   (``priced_as``). A made-up family member (``gpt-4.1-turbo``) is none of these.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("catalog.json")
MILLION = Decimal(1_000_000)
TOKEN_PRICES = ("input_per_mtok", "output_per_mtok")
KINDS = ("chat", "embedding", "image", "speech", "video", "midjourney", "music")


@dataclass(frozen=True)
class TokenUsage:
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
    priced_as: str | None = None  # the model whose price applies (a snapshot's base)
    aliases: tuple[str, ...] = ()

    @property
    def priced(self) -> bool:
        """Whether tokens have a price (chat, embeddings, token-billed images)."""
        return any(k in self.prices for k in TOKEN_PRICES)

    @property
    def has_price(self) -> bool:
        """Whether what this model's kind bills has a price at all; a model without one
        is refused to every caller with a dollar limit."""
        if self.kind in ("chat", "embedding"):
            return self.priced
        if self.kind == "image":
            return "per_image" in self.prices or bool(self.image_prices) or (
                "output_per_mtok" in self.prices)
        if self.kind == "speech":
            return "per_1k_chars" in self.prices
        if self.kind == "video":
            return bool(self.video_prices)
        return "per_task" in self.prices

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
            "priced_as": self.priced_as,
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


def token_cost(model: ModelInfo, usage: TokenUsage) -> Cost:
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
    cost = token_cost(model, TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=max_output))
    return cost.micro_usd


def _decimals(values: dict[str, Any] | None) -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in (values or {}).items()}


#: Vendors' snapshot suffixes: a name ending so is its base model, at the base's price.
SNAPSHOT = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest|exp(?:-\d{2}-\d{2})?"
    r"|preview(?:-\d{2}-\d{2}(?:\d{2})?|-\d{2}-\d{4})?)$"
)


def model_from_spec(model_id: str, spec: dict[str, Any], where: str) -> ModelInfo:
    kind = spec.get("kind", "chat")
    if kind not in KINDS:
        raise ValueError(f"{where}: model {model_id}: unknown kind {kind!r}")
    return ModelInfo(
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
        aliases=tuple(spec.get("aliases", ())),
    )


class Catalog:
    """The shipped price table, plus what an admin priced (:meth:`set_local`)."""

    def __init__(self, models: dict[str, ModelInfo], version: str, checked: str) -> None:
        self.shipped = dict(models)
        self.models = models
        self.version = version
        self.checked = checked
        self._aliases: dict[str, str] = {}
        self._resolved: dict[str, ModelInfo | None] = {}
        self._index()

    @classmethod
    def load(cls, path: Path = CATALOG_FILE) -> Catalog:
        raw = json.loads(path.read_text(encoding="utf-8"))
        models = {model_id: model_from_spec(model_id, spec, str(path))
                  for model_id, spec in raw["models"].items()}
        return cls(models, raw["version"], raw["checked"])

    def _index(self) -> None:
        self._aliases = {alias: m.id for m in self.models.values() for alias in m.aliases}
        self._resolved = {}

    def set_local(self, local: dict[str, ModelInfo]) -> None:
        """Models an admin priced (``CLASSROOM_PRICES_FILE``): added, or replacing the
        shipped entry of the same name. Called again on every reload."""
        self.models = {**self.shipped, **local}
        self._index()

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)

    def resolve(self, name: str) -> ModelInfo | None:
        """The catalog entry a name means: itself, an alias, or a dated snapshot of either
        (priced as its base, ``priced_as`` naming it); None when the catalog has no price
        source for the name."""
        if name in self._resolved:
            return self._resolved[name]
        found = self.models.get(name)
        if found is None:
            base = self._base(name)
            if base is not None:
                found = replace(base, id=name, upstream=name, priced_as=base.id, aliases=())
        if len(self._resolved) < 4096:
            self._resolved[name] = found
        return found

    def _base(self, name: str) -> ModelInfo | None:
        if name in self._aliases:
            return self.models[self._aliases[name]]
        stripped = SNAPSHOT.sub("", name)
        if stripped != name:
            return self.models.get(stripped) or (
                self.models[self._aliases[stripped]] if stripped in self._aliases else None)
        return None


class PricesFileError(ValueError):
    """An admin's prices file that cannot be used (the message names file and field)."""


PRICE_FIELDS = {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                "cache_write_per_mtok", "reasoning_per_mtok", "image_input_per_mtok",
                "per_image", "per_1k_chars", "per_task"}


def load_prices_file(path: Path, catalog: Catalog) -> dict[str, ModelInfo]:
    """An admin's prices (TOML), for models the shipped table lacks or prices wrongly::

        [models."gpt-4.1-2025-04-14"]
        same_as = "gpt-4.1"                # priced exactly as a catalog model

        [models."ft:gpt-4.1-mini:school"]
        provider = "openai"
        kind = "chat"
        input_per_mtok = "0.80"
        output_per_mtok = "3.20"

    Prices are strings or numbers in US dollars (per million tokens, per image, per
    thousand characters, per task); ``video_prices`` is a table of mode → per second.
    """
    from gateway.config.files import ConfigFileError, Problem

    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise ConfigFileError(file, f"cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(file, f"not valid TOML: {exc}") from exc
    tables = raw.get("models")
    if not isinstance(tables, dict) or set(raw) - {"models"}:
        raise ConfigFileError(file, "must hold only [models.\"<name>\"] tables")
    local: dict[str, ModelInfo] = {}
    for name, spec in tables.items():
        header = re.compile(r'^\s*\[\s*models\.(?:"' + re.escape(name) + '"|'
                            + re.escape(name) + r")\s*\]", re.M).search(text)
        line = text.count("\n", 0, header.start()) + 1 if header else None

        def problem(what: str, field: str, name: str = name, line: int | None = line) -> Any:
            return ConfigFileError(file, [Problem(what, line, f"models.{name}.{field}")])

        if not isinstance(spec, dict):
            raise problem("must be a table", "(table)")
        if "same_as" in spec:
            base = catalog.shipped.get(str(spec["same_as"]))
            if base is None or set(spec) != {"same_as"}:
                raise problem(f"'same_as' must name a model of the shipped catalog, alone "
                              f"(got {spec.get('same_as')!r})", "same_as")
            local[name] = replace(base, id=name, upstream=name, priced_as=base.id, aliases=())
            continue
        unknown = set(spec) - PRICE_FIELDS - {"provider", "kind", "video_prices",
                                              "context_window", "max_output_tokens",
                                              "description", "upstream"}
        if unknown:
            raise problem(f"unknown field(s) {sorted(unknown)}", sorted(unknown)[0])
        if "provider" not in spec:
            raise problem("is required (openai, anthropic, google, ...)", "provider")
        try:
            prices = {k: Decimal(str(v)) for k, v in spec.items() if k in PRICE_FIELDS}
            video = {k: Decimal(str(v)) for k, v in (spec.get("video_prices") or {}).items()}
        except (ArithmeticError, ValueError) as exc:
            raise problem(f"a price must be a number of US dollars ({exc})", "prices") from exc
        if any(p < 0 for p in (*prices.values(), *video.values())):
            raise problem("a price cannot be negative", "prices")
        try:
            info = model_from_spec(name, {
                k: v for k, v in spec.items() if k not in PRICE_FIELDS | {"video_prices"}
            }, file)
        except ValueError as exc:
            raise problem(str(exc).split(": ")[-1], "kind") from exc
        info = replace(info, prices=prices, video_prices=video)
        if not info.has_price:
            raise problem(f"gives no price a {info.kind} model is billed by", "prices")
        local[name] = info
    return local
