"""Provider adapters and the routing from a model name to one of them.

Every adapter exists in every gateway; whether a model can be used is the key
pool's answer (``pool.available(provider, tenant)``): a provider is usable when
a key serves the caller's school, and ``mock`` always is.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import ModelNotFound
from gateway.pricing import Catalog, ModelInfo
from gateway.providers.base import ChatCall, ChatProvider, ChatResult, NativeCall, StreamEvent
from gateway.providers.http import Upstream
from gateway.providers.mock import MockProvider

PROVIDER_IDS = ("openai", "anthropic", "google", "elevenlabs", "kling", "legnext", "mock")

# Names the catalog cannot price are still routed by their family, unpriced (and so
# refused to every caller with a dollar limit; see gateway.policy.admission).
PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("gpt-image-", "openai", "image"), ("dall-e-", "openai", "image"),
    ("text-embedding-", "openai", "embedding"), ("tts-", "openai", "speech"),
    ("gpt-4o-mini-tts", "openai", "speech"),
    ("gpt-", "openai", "chat"), ("chatgpt-", "openai", "chat"), ("o1", "openai", "chat"),
    ("o3", "openai", "chat"), ("o4", "openai", "chat"), ("claude-", "anthropic", "chat"),
    ("gemini-embedding", "google", "embedding"), ("gemini-", "google", "chat"),
    ("imagen-", "google", "image"), ("eleven_", "elevenlabs", "speech"),
    ("kling-", "kling", "video"), ("midjourney", "legnext", "midjourney"),
)


class ProviderRegistry:
    """The catalog, every adapter, and what a model name resolves to."""

    def __init__(self, catalog: Catalog, providers: dict[str, Any],
                 client: Upstream | None = None) -> None:
        self.catalog = catalog
        self.providers = providers
        self._client = client

    @classmethod
    def build(cls, catalog: Catalog, mock: MockProvider,
              client: Upstream | None = None) -> ProviderRegistry:
        from gateway.providers.anthropic import AnthropicProvider
        from gateway.providers.elevenlabs import ElevenLabsProvider
        from gateway.providers.google import GoogleProvider
        from gateway.providers.kling import KlingProvider
        from gateway.providers.legnext import LegNextProvider
        from gateway.providers.openai import OpenAIProvider

        client = client or Upstream()
        providers: dict[str, Any] = {
            "openai": OpenAIProvider(client), "anthropic": AnthropicProvider(client),
            "google": GoogleProvider(client), "elevenlabs": ElevenLabsProvider(client),
            "kling": KlingProvider(client), "legnext": LegNextProvider(client), "mock": mock,
        }
        return cls(catalog, providers, client)

    def lookup(self, name: str) -> ModelInfo:
        """What a model name means; unknown names are refused with ``model_not_found``."""
        info = self.catalog.resolve(name)
        if info is None:
            route = next(((p, k) for prefix, p, k in PREFIXES if name.startswith(prefix)), None)
            if route is None:
                raise ModelNotFound(
                    f"There is no model called '{name}'. List the models you can use with "
                    "GET /v1/models (in Python: client.models.list()); mock/echo always works.",
                    param="model",
                )
            info = ModelInfo(id=name, provider=route[0], kind=route[1])
        return info

    def adapter(self, provider: str) -> Any:
        return self.providers[provider]

    def models(self) -> list[ModelInfo]:
        return list(self.catalog.models.values())

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        if self._client is not None:
            await self._client.aclose()


__all__ = [
    "PROVIDER_IDS", "ChatCall", "ChatProvider", "ChatResult", "MockProvider", "NativeCall",
    "StreamEvent", "ProviderRegistry",
]
