"""Dependencies shared by the routers: the app's services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from gateway.asgi import source_of
from gateway.auth import Identity, TokenResolver, identify
from gateway.calls import Calls
from gateway.faces import NativeFaces
from gateway.history import HistoryStore
from gateway.history.jobs import JobStore
from gateway.history.media import ArtifactStore
from gateway.jobs import JobService
from gateway.keypool import KeyPool, PoolBackend
from gateway.keypool.store import KeyStore
from gateway.loadtest.manager import LoadTests
from gateway.media import MediaService
from gateway.pipeline import ChatService
from gateway.policy.admission import Admission
from gateway.providers import ProviderRegistry
from gateway.providers.retry import Attempts, RetryPolicy
from gateway.reload import ConfigReloader
from gateway.settings import Settings
from gateway.tenants import Tenant

# Whole numbers that reach the database must fit its signed 64-bit integers.
DB_INT_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX)]


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


class Services:
    """Everything a request handler may use; built once per app in the lifespan."""

    def __init__(
        self,
        settings: Settings,
        resolver: TokenResolver,
        history: HistoryStore,
        tenants: dict[str, Tenant],
        providers: ProviderRegistry,
        pool: PoolBackend | None = None,
        keystore: KeyStore | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.history = history
        self.tenants = tenants
        self.providers = providers
        self.pool = pool or KeyPool()
        self.keystore = keystore
        self.admission = admission or Admission(history, tenants)
        policy = RetryPolicy(settings.retry_attempts, settings.retry_base_seconds,
                             total_wait=settings.retry_max_seconds)
        self.calls = Calls(providers, tenants, history, self.pool, self.admission,
                           Attempts(self.pool, policy))
        self.chat = ChatService(self.calls, settings.chat_timeout_seconds,
                                settings.stream_keepalive_seconds)
        self.artifacts = ArtifactStore(history, settings.artifacts_dir)
        self.faces = NativeFaces(self.chat, self.artifacts)
        self.loadtests = LoadTests(
            self.chat, history, providers.lookup, self.pool.available, tenants,
            settings={"mock_ttft_ms": settings.mock_ttft_ms,
                      "mock_tokens_per_second": settings.mock_tokens_per_second},
        )
        self.media = MediaService(self.calls, self.artifacts, settings)
        self.jobs = JobService(self.calls, self.artifacts, JobStore(history), settings)
        self.config = ConfigReloader(settings, tenants, self.pool, keystore, history,
                                     providers.catalog)


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_identity(request: Request, services: ServicesDep) -> Identity:
    return await identify(services.resolver, request.headers)


CurrentUser = Annotated[Identity, Depends(current_identity)]


def call_source(request: Request) -> str:
    """Where a call came from: widgets say so in a header; everything else is the SDK path."""
    return source_of(request.headers.get("x-classroom-source"))
