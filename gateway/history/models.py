"""History tables (SQLAlchemy Core). The schema is owned by the Alembic migrations
in ``migrations/versions``; these definitions must match them (a test checks)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("source", String(16), nullable=False),  # sdk, widget, loadtest, ...
    Column("kind", String(16), nullable=False),  # chat, embedding, image, speech, video
    Column("api", String(16), nullable=False),  # openai, anthropic, google, classroom
    Column("provider", String(32)),
    Column("model", String(200)),
    Column("key_name", String(120)),  # the pool key's name, never the key
    Column("stream", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False),  # running, ok, error, interrupted
    Column("http_status", Integer),
    Column("error_code", String(64)),
    Column("error_message", Text),
    # Times are UNIX seconds (float): exact, portable, and easy to subtract.
    Column("queued_at", Float, nullable=False),
    Column("started_at", Float),
    Column("first_token_at", Float),
    Column("finished_at", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("reasoning_tokens", Integer),
    Column("cost_micro_usd", Integer),  # NULL when unpriced
    Column("cost_status", String(16)),  # priced, unpriced, estimated
    Column("request_text", Text),  # the last user message, for review (purgeable)
    Column("response_text", Text),  # purgeable
)

Index("ix_runs_user_id", runs.c.user, runs.c.id)
Index("ix_runs_tenant_id", runs.c.tenant, runs.c.id)
Index("ix_runs_status", runs.c.status)
