"""The gateway's configuration: one ``Settings`` object, read from the environment.

Every option is an environment variable ``CLASSROOM_<NAME>`` (the JupyterHub
variables keep their own names). The object is built by :func:`get_settings`
and handed to :func:`gateway.app.create_app`; nothing reads the environment at
import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSROOM_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the history database, artifacts and generated secrets live.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the history database; default: SQLite file "
        "gateway.sqlite in the data dir.",
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
        description="The hub's REST API, used to resolve callers' tokens.",
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
    workers: int = Field(
        default=1, ge=1,
        description="Worker processes. Pool state lives in one process, so only 1 is accepted.",
    )

    @field_validator("service_prefix")
    @classmethod
    def _slashes(cls, value: str) -> str:
        value = "/" + value.strip("/") + "/"
        return "/" if value == "//" else value

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir.resolve() / 'gateway.sqlite'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
