"""History tables (SQLAlchemy Core). The schema is owned by the Alembic migrations
in ``migrations/versions``; these definitions must match them (a test checks)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    Column("priced_as", String(200)),  # the catalog model charged, when not ``model`` itself
    Column("request_text", Text),  # the last user message, for review (purgeable)
    Column("response_text", Text),  # purgeable
    # Where in a lab the call came from, as the caller's kernel claims it (gateway.edge.origin):
    # never identity, bounded, escaped when shown.
    Column("notebook", String(255)),  # lab path: lessons/01_first_chat.ipynb
    Column("cell", String(64)),  # nbformat cell id
    Column("cell_position", Integer),  # its place among the code cells, 1-based
    Column("cell_count", Integer),  # the notebook's code cells
)

Index("ix_runs_user_id", runs.c.user, runs.c.id)
Index("ix_runs_tenant_notebook", runs.c.tenant, runs.c.notebook)
Index("ix_runs_tenant_id", runs.c.tenant, runs.c.id)
Index("ix_runs_status", runs.c.status)

provider_keys = Table(
    "provider_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("name", String(120), nullable=False),
    Column("secret_enc", Text),
    Column("secret2_enc", Text),
    Column("last4", String(8)),
    Column("base_url", String(500)),
    Column("concurrency_limit", Integer),
    Column("rpm_limit", Integer),
    Column("tpm_limit", Integer),
    Column("priority", Integer, nullable=False, default=0),
    Column("tenant_scope", Text, nullable=False, default='["*"]'),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("health", String(16), nullable=False, default="ok"),
    Column("health_reason", Text),
    Column("source", String(16), nullable=False, default="file"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("provider", "name", name="uq_provider_keys_provider_name"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("tenant", String(64)),
    Column("action", String(64), nullable=False),
    Column("target", String(200)),
    Column("details", Text),
)
Index("ix_audit_log_tenant_id", audit_log.c.tenant, audit_log.c.id)

# How far an import from a file has read (migration 0005), updated in the transaction that
# writes the rows it read, so that a line is imported exactly once even when that
# transaction is rolled back and run again.
import_positions = Table(
    "import_positions",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("position", BigInteger),  # NULL: not yet imported into this database
    Column("updated_at", Float, nullable=False),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("title", String(200)),
    Column("model", String(200)),
    Column("system_prompt", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # A session's defaults (migration 0008): parameters as JSON, memory auto|explicit|disabled,
    # and an optional cap on the tokens of context sent (at most the model's window).
    Column("alias", String(200)),
    Column("params", Text),
    Column("memory_mode", String(16), nullable=False, server_default="explicit"),
    Column("context_limit", Integer),
)
Index("ix_conversations_user", conversations.c.user, conversations.c.updated_at)

Index("ix_conversations_tenant_user", conversations.c.tenant, conversations.c.user)

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("conversation_id", String(40), ForeignKey("conversations.id", ondelete="CASCADE"),
           nullable=False),
    Column("parent_message_id", String(40)),
    Column("role", String(16), nullable=False),
    Column("content", Text),
    Column("model", String(200)),
    Column("run_id", Integer),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost_micro_usd", Integer),
    Column("created_at", Float, nullable=False),
    Column("status", String(16), nullable=False, server_default="ok"),  # ok, error
    Column("error_code", String(64)),
    Column("response_ms", Float),
    Column("context", Text),  # JSON: what the gateway sent for this reply (migration 0008)
    Column("attachments", Text),  # JSON: [{artifact_id, filename, mime, ...}] of the message
)

Index("ix_messages_conversation_created", messages.c.conversation_id, messages.c.created_at)
Index("ix_messages_run", messages.c.run_id)

# What a user asked the classroom to remember, injected into their sessions' prompts.
memory_entries = Table(
    "memory_entries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("conversation_id", String(40)),  # NULL for a shared entry
    Column("scope", String(16), nullable=False),  # session, shared
    Column("type", String(16), nullable=False),  # fact, preference, instruction, summary
    Column("content", Text, nullable=False),
    Column("source_message_ids", Text),  # JSON list
    Column("keywords", Text),  # JSON list
    Column("importance", Integer, nullable=False),  # 1 (low) .. 5 (high)
    Column("origin", String(16), nullable=False),  # user, auto, summary
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

Index("ix_memory_entries_owner", memory_entries.c.tenant, memory_entries.c.user)
Index("ix_memory_entries_conversation", memory_entries.c.conversation_id)

# A user's own provider keys (migration 0008): sealed like pooled keys, never pooled.
own_keys = Table(
    "own_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text),
    Column("secret_enc", Text, nullable=False),
    Column("last4", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

Index("uq_own_keys_owner_name", own_keys.c.tenant, own_keys.c.user, own_keys.c.name,
      unique=True)

# Saved playground experiments (migration 0008): one prompt, run N times.
playground_runs = Table(
    "playground_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("system_prompt", Text),
    Column("user_prompt", Text, nullable=False),
    Column("params", Text),  # JSON
    Column("prompt_hash", String(64), nullable=False),
    Column("iterations", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running, done, failed, partial
    Column("rerun_of", String(40)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
)

Index("ix_playground_runs_owner_hash", playground_runs.c.tenant, playground_runs.c.user,
      playground_runs.c.prompt_hash)

playground_results = Table(
    "playground_results",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("call_run_id", Integer),  # the call's row in runs
    Column("status", String(16), nullable=False),  # ok, error
    Column("text", Text),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("latency_ms", Float),
    Column("error_code", String(64)),
    Column("error_message", Text),
)
Index("ix_messages_conversation", messages.c.conversation_id, messages.c.created_at)

quota_overrides = Table(
    "quota_overrides",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("requests_per_day", Integer),
    Column("tokens_per_day", Integer),
    Column("usd_per_month", Float),
    Column("concurrent_requests", Integer),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
)

pauses = Table(
    "pauses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("user", String(128)),
    Column("paused_by", String(128), nullable=False),
    Column("reason", Text),
    Column("created_at", Float, nullable=False),
)
Index("ix_pauses_tenant", pauses.c.tenant, pauses.c.user)

# -- media: artifacts, asynchronous jobs, non-token units (migration 0003) -----------------

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # image, audio, video
    Column("mime", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # the file under artifacts/ab/cdef...
    Column("model", String(200)),
    Column("prompt", Text),
    Column("run_id", Integer),
    Column("job_id", String(40)),
    Column("session_id", String(64)),  # multi-turn image sessions
    Column("meta", Text),  # JSON: width, height, seconds, voice, ...
    Column("created_at", Float, nullable=False),
)

Index("ix_artifacts_user_created", artifacts.c.user, artifacts.c.created_at)
Index("ix_artifacts_session", artifacts.c.session_id)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # video, midjourney, music
    Column("provider", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt", Text),
    Column("params", Text),  # JSON
    Column("status", String(16), nullable=False),  # queued, running, succeeded, failed
    Column("progress", Float, nullable=False),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("vendor_task_id", String(200)),
    Column("key_name", String(120)),
    Column("run_id", Integer),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
)

Index("ix_jobs_user_created", jobs.c.user, jobs.c.created_at)
Index("ix_jobs_status", jobs.c.status)

run_units = Table(
    "run_units",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("images", Integer),
    Column("characters", Integer),
    Column("seconds", Float),
    Column("tasks", Integer),
)

# -- load tests: runs, rounds, samples, saved lesson recordings (migration 0004) ------------

loadtest_runs = Table(
    "loadtest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("mode", String(8), nullable=False),  # mock, real
    Column("status", String(16), nullable=False),  # running, done, cancelled, stopped_at_cap, ...
    Column("created_by", String(128), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("plan", Text, nullable=False),  # JSON, fully spelled out
    Column("cost_cap_micro_usd", Integer),
    Column("estimate_micro_usd", Integer),
    Column("spent_micro_usd", Integer, nullable=False, default=0),
    Column("requests_planned", Integer, nullable=False),
    Column("requests_done", Integer, nullable=False, default=0),
    Column("settings", Text),  # JSON: the mock's latency settings during the run
    Column("error_message", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
)

loadtest_rounds = Table(
    "loadtest_rounds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("loadtest_id", Integer, ForeignKey("loadtest_runs.id", ondelete="CASCADE"),
           nullable=False),
    Column("idx", Integer, nullable=False),
    Column("label", String(200), nullable=False),
    Column("kind", String(8), nullable=False),  # burst, lesson
    Column("model", String(200)),  # NULL for a lesson of several models
    Column("users", Integer, nullable=False),
    Column("requests_planned", Integer, nullable=False),
    Column("requests_done", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),  # pending, running, done, cancelled, ...
    Column("started_at", Float),
    Column("finished_at", Float),
)

Index("uq_loadtest_rounds_idx", loadtest_rounds.c.loadtest_id, loadtest_rounds.c.idx, unique=True)

loadtest_samples = Table(
    "loadtest_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("loadtest_id", Integer, ForeignKey("loadtest_runs.id", ondelete="CASCADE"),
           nullable=False),
    Column("round_idx", Integer, nullable=False),
    Column("users", Integer, nullable=False),
    Column("user_idx", Integer, nullable=False),
    Column("seq", Integer, nullable=False),  # the user's n-th call (a lesson's step)
    Column("run_id", Integer),  # the call's row in runs
    Column("provider", String(32)),
    Column("model", String(200), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # ok, error, cancelled
    Column("error_code", String(64)),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("queue_wait_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost_micro_usd", Integer),
)

Index("ix_loadtest_samples_run_round", loadtest_samples.c.loadtest_id, loadtest_samples.c.round_idx)

loadtest_lessons = Table(
    "loadtest_lessons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("user", String(128)),
    Column("source", String(16)),
    Column("since", Float),
    Column("until", Float),
    Column("note", Text),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

Index("uq_loadtest_lessons_tenant_name", loadtest_lessons.c.tenant, loadtest_lessons.c.name,
      unique=True)

# Suno accounts (the seed platform's SUNO_ACCOUNTS_JSON), declared in the configuration and
# synced here; the password is sealed like a provider key. One assignment per person.
suno_accounts = Table(
    "suno_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # the declared id
    Column("email", String(320), nullable=False),
    Column("password_enc", Text, nullable=False),
    Column("memo", Text, nullable=False, default=""),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("updated_at", Float, nullable=False),
)

suno_assignments = Table(
    "suno_assignments",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("tenant", String(64)),
    Column("account_id", Integer, ForeignKey("suno_accounts.id"), nullable=False),
    Column("assigned_by", String(128), nullable=False),
    Column("assigned_at", Float, nullable=False),
)
from gateway.history import mcp_tables as _mcp_tables  # noqa: E402,F401  (MCP tables, same metadata)
