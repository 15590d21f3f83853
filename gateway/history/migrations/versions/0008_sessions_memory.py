"""Sessions and memory: conversations gain an alias, default parameters, a memory mode and
a context limit; messages gain a status, a response time, what their context was
built from and their attached files (artifact ids); memory entries (per session or
shared across a user's sessions); users' own provider keys
(sealed, never pooled); saved playground runs and their per-iteration results

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("alias", sa.String(200)))
        batch.add_column(sa.Column("params", sa.Text))
        batch.add_column(sa.Column("memory_mode", sa.String(16), nullable=False,
                                   server_default="explicit"))
        batch.add_column(sa.Column("context_limit", sa.Integer))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="ok"))
        batch.add_column(sa.Column("error_code", sa.String(64)))
        batch.add_column(sa.Column("response_ms", sa.Float))
        batch.add_column(sa.Column("context", sa.Text))
        batch.add_column(sa.Column("attachments", sa.Text))
    op.create_index("ix_messages_conversation_created", "messages",
                    ["conversation_id", "created_at"])
    op.create_index("ix_messages_run", "messages", ["run_id"])
    op.create_index("ix_conversations_tenant_user", "conversations", ["tenant", "user"])
    op.create_table(
        "memory_entries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(40)),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("source_message_ids", sa.Text),
        sa.Column("keywords", sa.Text),
        sa.Column("importance", sa.Integer, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_memory_entries_owner", "memory_entries", ["tenant", "user"])
    op.create_index("ix_memory_entries_conversation", "memory_entries", ["conversation_id"])
    op.create_table(
        "own_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("secret_enc", sa.Text, nullable=False),
        sa.Column("last4", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("uq_own_keys_owner_name", "own_keys", ["tenant", "user", "name"],
                    unique=True)
    op.create_table(
        "playground_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("system_prompt", sa.Text),
        sa.Column("user_prompt", sa.Text, nullable=False),
        sa.Column("params", sa.Text),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("iterations", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rerun_of", sa.String(40)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("ix_playground_runs_owner_hash", "playground_runs",
                    ["tenant", "user", "prompt_hash"])
    op.create_table(
        "playground_results",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("call_run_id", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("playground_results")
    op.drop_index("ix_playground_runs_owner_hash", table_name="playground_runs")
    op.drop_table("playground_runs")
    op.drop_index("uq_own_keys_owner_name", table_name="own_keys")
    op.drop_table("own_keys")
    op.drop_index("ix_memory_entries_conversation", table_name="memory_entries")
    op.drop_index("ix_memory_entries_owner", table_name="memory_entries")
    op.drop_table("memory_entries")
    op.drop_index("ix_conversations_tenant_user", table_name="conversations")
    op.drop_index("ix_messages_run", table_name="messages")
    op.drop_index("ix_messages_conversation_created", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for name in ("attachments", "context", "response_ms", "error_code", "status"):
            batch.drop_column(name)
    with op.batch_alter_table("conversations") as batch:
        for name in ("context_limit", "memory_mode", "params", "alias"):
            batch.drop_column(name)
