"""Provider adapters and the routing from a model name to one of them."""

from __future__ import annotations

from gateway.errors import ModelNotFound, NoKeyAvailable
from gateway.pricing import Catalog, ModelInfo
from gateway.providers.base import ChatCall, ChatProvider, ChatResult
from gateway.providers.mock import MockProvider

PROVIDER_IDS = ("openai", "anthropic", "google", "elevenlabs", "kling", "legnext", "mock")

# Names the catalog does not list are still routed by their family, unpriced.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"), ("chatgpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
    ("o4", "openai"), ("text-embedding-", "openai"), ("dall-e-", "openai"),
    ("tts-", "openai"), ("claude-", "anthropic"), ("gemini-", "google"),
    ("imagen-", "google"), ("eleven_", "elevenlabs"), ("kling-", "kling"),
    ("midjourney", "legnext"),
)


class ProviderRegistry:
    """The configured providers, and what a model name resolves to."""

    def __init__(self, catalog: Catalog, providers: dict[str, ChatProvider]) -> None:
        self.catalog = catalog
        self.providers = providers

    def lookup(self, name: str) -> ModelInfo:
        """What a model name means; unknown names are refused with ``model_not_found``."""
        info = self.catalog.get(name)
        if info is None:
            provider_id = next((p for prefix, p in PREFIXES if name.startswith(prefix)), None)
            if provider_id is None:
                raise ModelNotFound(
                    f"There is no model called '{name}'. List the models you can use with "
                    "GET /v1/models (in Python: client.models.list()); mock/echo always works.",
                    param="model",
                )
            info = ModelInfo(id=name, provider=provider_id)
        return info

    def provider_for(self, info: ModelInfo) -> ChatProvider:
        provider = self.providers.get(info.provider)
        if provider is None:
            raise NoKeyAvailable(
                f"The model '{info.id}' needs a {info.provider} key, and this classroom has none "
                "set up. Ask your teacher, or practise with mock/echo.",
                param="model",
            )
        return provider

    def available(self) -> list[ModelInfo]:
        return [m for m in self.catalog.models.values() if m.provider in self.providers]

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


__all__ = [
    "PROVIDER_IDS", "ChatCall", "ChatProvider", "ChatResult", "MockProvider", "ProviderRegistry",
]
