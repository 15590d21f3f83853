"""What every key-pool backend offers its callers: the seam between the pipeline and where
the pool's state lives.

Two backends implement it:

- :class:`gateway.keypool.pool.KeyPool`: state in this process (the embedded default;
  one worker only);
- :class:`gateway.keypool.redis_pool.RedisPool`: state in Redis, shared by every worker
  and replica (``CLASSROOM_REDIS_URL``).

Callers (the retry loop, the API, the reloader, the load tester) use only these names;
:func:`gateway.keypool.setup.build_pool` picks the backend from the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from gateway.keypool.keys import ProviderKey

if TYPE_CHECKING:
    from gateway.keypool.pool import Lease

HealthListener = Callable[[ProviderKey, bool, str | None], None]


class LeaseLike(Protocol):
    """A granted slot on a key (``key`` None: the unlimited mock). Its methods never
    block: a shared backend sends what they report in the background."""

    key: ProviderKey | None
    waited: float
    granted_at: float
    released_at: float | None

    def renew(self) -> None:
        """Heartbeat: the holder is alive (long streams and job polls call it)."""

    def used_tokens(self, tokens: int) -> None:
        """The real token count, replacing the estimate charged at the grant."""

    def failed(self, status: int, retry_after: float | None = None) -> None:
        """The provider answered 401/403 (key out of use) or 429 (key cools down)."""

    def release(self) -> None: ...


class PoolBackend(Protocol):
    on_health: HealthListener | None

    @property
    def keys(self) -> list[ProviderKey]: ...

    def set_keys(self, keys: Iterable[ProviderKey]) -> None:
        """Replace the declared keys; running leases and windows of kept keys survive."""

    def upsert_key(self, key: ProviderKey) -> None: ...

    def set_health(self, provider: str, name: str, healthy: bool,
                   reason: str | None = None) -> None: ...

    def keys_for(self, provider: str, tenant: str) -> list[ProviderKey]: ...

    def available(self, provider: str, tenant: str) -> bool:
        """Whether any key could serve this school now (health, not load)."""

    def lease(self, provider: str, *, tenant: str, user: str, tier: Any = ...,
              tokens: int = 0, exclude: Iterable[str] = (),
              max_wait: float | None = None) -> AbstractAsyncContextManager[Lease]:
        """``async with pool.lease(...) as lease``: waits for a slot, releases it on exit."""

    async def acquire(self, provider: str, *, tenant: str, user: str, tier: Any = ...,
                      tokens: int = 0, exclude: Iterable[str] = (),
                      max_wait: float | None = None) -> Lease:
        """Wait for a lease (the caller must ``release()`` it)."""

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/pool`` shows (no secret, ever)."""

    async def start(self) -> None:
        """Begin background work (a shared backend's heartbeat); idempotent."""

    async def aclose(self) -> None: ...

    async def problem(self) -> str | None:
        """Why the pool cannot serve (None: it can), for ``/health?ready=true``."""
