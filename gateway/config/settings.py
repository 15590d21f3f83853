"""The gateway's configuration: one ``Settings`` object, read from the environment.

Every option is an environment variable ``CLASSROOM_<NAME>`` (the JupyterHub
variables keep their own names). The object is built by :func:`get_settings`
and handed to :func:`gateway.edge.app.create_app`; nothing reads the environment at
import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSROOM_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the history database, artifacts and generated secrets live.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the history database, e.g. "
        "postgresql+psycopg://user:pw@host/classroom; unset: the SQLite file gateway.sqlite in "
        "the data dir. Gateways starting at once on one database migrate it once.",
    )
    redis_url: str | None = Field(
        default=None,
        description="URL of a Redis server (redis://host:port/db) holding the key pool's "
        "shared state: leases, RPM/TPM windows, cool-downs, key health and the fair queue. "
        "With it, several workers and replicas (sharing one Redis and one database) are one "
        "gateway; without it the pool lives in the process and only 1 worker is accepted. "
        "While Redis is unreachable calls are refused with pool_unavailable (503).",
        repr=False,
    )
    redis_heartbeat_s: float = Field(
        default=3.0, gt=0.2, le=60,
        description="With Redis: each replica renews its heartbeat every third of this; a "
        "replica silent for this long (killed, frozen) loses its leases and queued calls, so "
        "its slots come back within this time rather than after lease_ttl_s.",
    )
    redis_prefix: str = Field(
        default="classroom:pool",
        description="With Redis: the prefix of every key the pool writes (one per classroom "
        "sharing a Redis server).",
    )
    tenants_dir: Path = Field(
        default=REPO_ROOT / "tenants", description="Directory of tenant (school) JSON files."
    )
    auth_tokens_file: Path | None = Field(
        default=None,
        description="JSON file of static tokens ({\"tokens\": {token: {name, tenant, role}}}); "
        "when set the gateway authenticates from it instead of the hub.",
    )
    hub_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLASSROOM_HUB_API_URL", "JUPYTERHUB_API_URL"),
        description="The hub's REST API, used to resolve callers' tokens (set by the hub for "
        "its service).",
    )
    hub_api_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLASSROOM_HUB_API_TOKEN", "JUPYTERHUB_API_TOKEN"),
        description="The gateway service's own hub token.",
        repr=False,
    )
    service_prefix: str = Field(
        default="/services/gateway/",
        validation_alias=AliasChoices("CLASSROOM_SERVICE_PREFIX", "JUPYTERHUB_SERVICE_PREFIX"),
        description="URL prefix under which the hub's proxy forwards requests to the gateway.",
    )
    identity_cache_seconds: float = Field(
        default=60.0, ge=0, le=60,
        description="How long a resolved hub token is trusted before it is checked again (≤ 60 s).",
    )
    mock_ttft_ms: float = Field(
        default=150.0, ge=0, le=60_000,
        description="Mock provider: time to first token, milliseconds.",
    )
    mock_tokens_per_second: float = Field(
        default=80.0, ge=0,
        description="Mock provider: streaming speed; 0 sends every token at once.",
    )
    max_body_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024,
        description="Largest request body accepted, in bytes (images are sent inline).",
    )
    keys_file: Path | None = Field(
        default=None, description="Provider key pool, TOML (one [[provider]] table per key).",
    )
    prices_file: Path | None = Field(
        default=None,
        description="Admin's prices (TOML) for models the shipped price table lacks or prices "
        "differently; a model with no price is refused to callers with a dollar budget.",
    )
    key_pool_json: str | None = Field(
        default=None, repr=False,
        description="Provider key pool as JSON (the seed platform's shape); instead of keys_file.",
    )
    suno_accounts_json: str | None = Field(
        default=None, repr=False,
        description="Suno accounts as JSON, the seed platform's shape: a list of {id, email, "
        "password, memo}; id 0 (or an empty email) is the seed's 'no assignment' row. Stored "
        "encrypted; admins hand them to people (PUT /api/suno/assignments/{user}).",
    )
    suno_accounts_file: Path | None = Field(
        default=None,
        description="Suno accounts in a file instead: TOML ([[suno]] tables of id, email, "
        "password, memo) or JSON (the same list as suno_accounts_json).",
    )
    master_key: str | None = Field(
        default=None, repr=False,
        description="Encrypts provider keys at rest: 32 bytes, URL-safe base64. Generated into the "
        "data dir in the embedded set-up (no CLASSROOM_DB_URL); required otherwise.",
    )
    queue_max_wait_s: float = Field(
        default=120.0, gt=0, le=3600,
        description="Longest a call waits for a free key before queue_timeout (429).",
    )
    lease_ttl_s: float = Field(
        default=300.0, gt=0,
        description="A key lease not renewed for this long is reclaimed (its holder died).",
    )
    rate_limit_margin_ms: float = Field(
        default=250.0, ge=0, le=10_000,
        description="How long past its key's one-minute RPM/TPM window a grant still counts, "
        "so that the vendor, which counts a request when it arrives a few ms after its grant, "
        "never sees more than the limit in a minute (benchmarks/dispatch_jitter.py measures "
        "the spread of those delays).",
    )
    stream_keepalive_seconds: float = Field(
        default=5.0, gt=0, le=60,
        description="A stream still queued for a key after this long starts with SSE keep-alive "
        "comments, repeated at this interval, until its first chunk.",
    )
    global_concurrency: int | None = Field(
        default=None, ge=1,
        description="Provider calls running at once across the whole classroom; unset = no cap.",
    )
    chat_timeout_seconds: float = Field(
        default=120.0, gt=0,
        description="Chat and embeddings: longest wait for a provider's answer, or between two "
        "chunks of a stream.",
    )
    image_timeout_seconds: float = Field(
        default=180.0, gt=0, description="Image generation and editing: longest provider wait.",
    )
    speech_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Text to speech: longest provider wait.",
    )
    video_timeout_seconds: float = Field(
        default=1200.0, gt=0,
        description="Asynchronous jobs (video, Midjourney-style): longest time from creation "
        "to a stored result.",
    )
    job_poll_seconds: float = Field(
        default=3.0, gt=0, description="How often a running job asks its provider for progress.",
    )
    retry_attempts: int = Field(
        default=3, ge=1, le=10,
        description="Provider attempts per call (429, 5xx, connection errors and timeouts are "
        "retried; a stream is never retried once its first byte reached the caller).",
    )
    retry_base_seconds: float = Field(
        default=0.5, ge=0,
        description="First retry's backoff ceiling; it doubles per attempt, with full jitter.",
    )
    retry_max_seconds: float = Field(
        default=30.0, ge=0,
        description="Total time a call may spend waiting between attempts (Retry-After "
        "included); beyond it the provider's error is returned.",
    )
    mock_media_ms: float = Field(
        default=300.0, ge=0, le=60_000,
        description="Mock provider: latency of an embedding, image or speech call, milliseconds.",
    )
    mock_job_seconds: float = Field(
        default=6.0, ge=0, le=3600,
        description="Mock provider: how long a video or Midjourney-style job takes.",
    )
    upstream_connections: int = Field(
        default=400, ge=1,
        description="Connection slots to the vendors: requests to providers in flight at once "
        "across the gateway process (every vendor together).",
    )
    upstream_slot_wait_seconds: float = Field(
        default=30.0, gt=0,
        description="Longest a provider call waits for one of those connection slots before "
        "it fails with provider_unavailable (503). This wait is the gateway's own; it is not "
        "the wait for a key (queue_max_wait_s), which comes before it.",
    )
    upstream_connect_timeout_seconds: float = Field(
        default=30.0, gt=0,
        description="Longest wait to open a connection to a vendor: TCP, the HTTP proxy's "
        "CONNECT tunnel and the TLS handshake together (provider_timeout, 504). The wait for "
        "the vendor's answer after that is the kind's own timeout (chat_timeout_seconds, "
        "image_timeout_seconds, ...), counted between two reads.",
    )
    download_deadline_seconds: float = Field(
        default=600.0, gt=0,
        description="Total time for downloading one result file of a job (a video, a "
        "Midjourney image), from the request to the last byte; unlike the kinds' timeouts, "
        "which count the silence between two reads, this bounds a slow but steady download "
        "(provider_timeout, 504). The job as a whole is bounded by video_timeout_seconds.",
    )
    upstream_max_answer_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024,
        description="Largest answer accepted from a vendor, in bytes after decompression "
        "(a video download included); a larger one is dropped with provider_error (502).",
    )
    mcp_server_url: str | None = Field(
        default=None,
        description="The classroom's own MCP server (streamable HTTP), e.g. "
        "http://127.0.0.1:8765/mcp: allowed for every school and offered to every user as "
        "the built-in connection 'classroom'. `classroom run` starts it and sets this.",
    )
    mcp_allowed: list[str] = Field(
        default_factory=list,
        description="MCP servers every school's users may add, besides each school's own "
        "allow-list (JSON list of URLs, hosts, *.domains, IP networks, or \"*\" for any public "
        "server). Private and loopback addresses are reachable only when listed explicitly.",
    )
    mcp_timeout_seconds: float = Field(
        default=15.0, gt=0, le=300,
        description="Longest wait for an MCP server: to connect and list its tools, or for "
        "one tool call (then the call is recorded as a timeout and the model told so).",
    )
    workers: int = Field(
        default=1, ge=1,
        description="Worker processes of `classroom gateway serve`. More than 1 needs "
        "redis_url (the pool's state shared in Redis); without it only 1 is accepted.",
    )

    @field_validator("service_prefix")
    @classmethod
    def _slashes(cls, value: str) -> str:
        value = "/" + value.strip("/") + "/"
        return "/" if value == "//" else value

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir.resolve() / 'gateway.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
