"""provider keys, audit log, conversations and messages, quota overrides, pauses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("secret_enc", sa.Text),  # AES-GCM, base64; NULL for mock keys
        sa.Column("secret2_enc", sa.Text),  # Kling's secret key
        sa.Column("last4", sa.String(8)),
        sa.Column("base_url", sa.String(500)),
        sa.Column("concurrency_limit", sa.Integer),
        sa.Column("rpm_limit", sa.Integer),
        sa.Column("tpm_limit", sa.Integer),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tenant_scope", sa.Text, nullable=False, server_default='["*"]'),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("health", sa.String(16), nullable=False, server_default="ok"),
        sa.Column("health_reason", sa.Text),
        sa.Column("source", sa.String(16), nullable=False, server_default="file"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("provider", "name", name="uq_provider_keys_provider_name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("details", sa.Text),  # JSON
    )
    op.create_index("ix_audit_log_tenant_id", "audit_log", ["tenant", "id"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("system_prompt", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversations_user", "conversations", ["user", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "conversation_id", sa.String(40),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False,
        ),
        sa.Column("parent_message_id", sa.String(40)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text),
        sa.Column("model", sa.String(200)),
        sa.Column("run_id", sa.Integer),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("cost_micro_usd", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "created_at"])
    op.create_table(
        "quota_overrides",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("requests_per_day", sa.Integer),
        sa.Column("tokens_per_day", sa.Integer),
        sa.Column("usd_per_month", sa.Float),
        sa.Column("concurrent_requests", sa.Integer),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "pauses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128)),  # NULL: the whole school's students
        sa.Column("paused_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_pauses_tenant", "pauses", ["tenant", "user"])


def downgrade() -> None:
    for table in ("pauses", "quota_overrides", "messages", "conversations", "audit_log",
                  "provider_keys"):
        op.drop_table(table)
