"""The composition root: every service of one gateway, built in one place.

:func:`build_services` reads the settings and builds the parts in the order they
depend on each other (tenants and prices, providers, history, key pool, admission,
then the services the routers call); :class:`Services` only holds them. Nothing
else constructs a service, so a part is configured once: the global concurrency
cap, for instance, is given to the one :class:`Admission` every door uses.

The key pool's backend is chosen in :func:`build_key_pool` and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from gateway.auth import HubTokens, StaticTokens, TokenResolver
from gateway.config.files import ConfigFileError
from gateway.config.network import Network, NetworkConfigError
from gateway.config.reload import ConfigReloader
from gateway.config.settings import Settings
from gateway.config.tenants import Tenant, load_tenants
from gateway.history import HistoryStore
from gateway.history.artifacts import ArtifactStore
from gateway.history.job_store import JobStore
from gateway.keypool import PoolBackend
from gateway.keypool.pool import WINDOW
from gateway.keypool.setup import build_pool
from gateway.keypool.store import KeyStore
from gateway.loadtest.manager import LoadTests
from gateway.policy.admission import Admission
from gateway.pricing import Catalog, load_prices_file
from gateway.providers import MockProvider, ProviderRegistry
from gateway.providers.http import Upstream
from gateway.providers.retry import Attempts, RetryPolicy
from gateway.providers.wire import Limits
from gateway.services.calls import Calls
from gateway.services.chat import ChatService
from gateway.services.media_calls import MediaService
from gateway.services.native import NativeApis
from gateway.services.provider_jobs import JobService
from gateway.services.suno import SunoAccounts
from gateway.tooluse import ConnectionStore, McpClient, ToolTurns


@dataclass
class Services:
    """Everything a request handler may use; built by :func:`build_services`, once per app."""

    settings: Settings
    resolver: TokenResolver
    history: HistoryStore
    tenants: dict[str, Tenant]
    providers: ProviderRegistry
    pool: PoolBackend
    keystore: KeyStore
    admission: Admission
    calls: Calls
    chat: ChatService
    artifacts: ArtifactStore
    native: NativeApis
    loadtests: LoadTests
    media: MediaService
    jobs: JobService
    suno: SunoAccounts
    mcp: ConnectionStore
    tool_turns: ToolTurns
    config: ConfigReloader


def build_resolver(settings: Settings) -> TokenResolver:
    if settings.auth_tokens_file is not None:
        return StaticTokens(settings.auth_tokens_file)
    if settings.hub_api_url:
        return HubTokens(settings.hub_api_url, settings.identity_cache_seconds)
    raise SystemExit(
        "The gateway needs a way to check tokens: run it as a JupyterHub service "
        "(JUPYTERHUB_API_URL) or set CLASSROOM_AUTH_TOKENS_FILE."
    )


def upstream(settings: Settings) -> Upstream:
    """The connections to the vendors: the environment's proxies and CA, the settings' limits."""
    try:
        network = Network.from_environ()
    except NetworkConfigError as error:
        raise SystemExit(f"Cannot start: {error}") from None
    limits = Limits(
        connections=settings.upstream_connections,
        slot_wait=settings.upstream_slot_wait_seconds,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        max_answer_bytes=settings.upstream_max_answer_bytes,
    )
    return Upstream(network, limits, settings.download_deadline_seconds)


def build_providers(settings: Settings) -> ProviderRegistry:
    """The price catalog (with the local prices file) and one adapter per vendor protocol."""
    catalog = Catalog.load()
    if settings.prices_file is not None:
        try:
            catalog.set_local(load_prices_file(settings.prices_file, catalog))
        except ConfigFileError as error:
            raise SystemExit(f"prices not loaded: {error}") from error
    return ProviderRegistry.build(catalog, MockProvider(
        settings.mock_ttft_ms, settings.mock_tokens_per_second, settings.mock_media_ms,
        settings.mock_job_seconds,
    ), upstream(settings))


def build_key_pool(settings: Settings, engine: Engine, *, window: float = WINDOW
                   ) -> tuple[PoolBackend, KeyStore]:
    """The key pool and its encrypted key store: the one place a pool backend is chosen
    (the in-process pool, or with ``CLASSROOM_REDIS_URL`` the one shared on Redis:
    :func:`gateway.keypool.setup.make_pool`)."""
    return build_pool(settings, engine, window=window)


def build_services(settings: Settings, *, window: float = WINDOW) -> Services:
    """Every service of one gateway; ``window``: the pool's RPM/TPM window (see
    :func:`build_pool`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tenants = load_tenants(settings.tenants_dir)
    providers = build_providers(settings)
    history = HistoryStore.open(settings.database_url)
    pool, keystore = build_key_pool(settings, history.engine, window=window)
    admission = Admission(history, tenants, global_concurrency=settings.global_concurrency,
                          queue_max_wait=settings.queue_max_wait_s)
    retry = RetryPolicy(settings.retry_attempts, settings.retry_base_seconds,
                        total_wait=settings.retry_max_seconds)
    calls = Calls(providers, tenants, history, pool, admission, Attempts(pool, retry))
    chat = ChatService(calls, settings.chat_timeout_seconds, settings.stream_keepalive_seconds)
    artifacts = ArtifactStore(history, settings.artifacts_dir)
    loadtests = LoadTests(
        chat, history, providers.lookup, pool.available, tenants,
        settings={"mock_ttft_ms": settings.mock_ttft_ms,
                  "mock_tokens_per_second": settings.mock_tokens_per_second},
    )
    # One box seals every secret kept at rest: pooled keys, MCP headers, Suno passwords.
    mcp = ConnectionStore(history, keystore.box, settings.mcp_server_url,
                          tuple(settings.mcp_allowed))
    return Services(
        settings=settings,
        resolver=build_resolver(settings),
        history=history,
        tenants=tenants,
        providers=providers,
        pool=pool,
        keystore=keystore,
        admission=admission,
        calls=calls,
        chat=chat,
        artifacts=artifacts,
        native=NativeApis(chat, artifacts),
        loadtests=loadtests,
        media=MediaService(calls, artifacts, settings),
        jobs=JobService(calls, artifacts, JobStore(history), settings),
        suno=SunoAccounts(history, settings, keystore.box),
        mcp=mcp,
        tool_turns=ToolTurns(chat, mcp, McpClient(settings.mcp_timeout_seconds)),
        config=ConfigReloader(settings, tenants, pool, keystore, history, providers.catalog),
    )
