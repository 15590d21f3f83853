"""MCP: mcp_connections (per user, header values sealed), mcp_allowlist (per school),
tool_calls (one row per tool call, with duration and status)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_connections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("header_names", sa.Text, nullable=False),
        sa.Column("headers_enc", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant", "owner", "name", name="uq_mcp_connections_owner_name"),
    )
    op.create_table(
        "mcp_allowlist",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("entry", sa.String(2000), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant", "entry", name="uq_mcp_allowlist_entry"),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("connection_id", sa.Integer),
        sa.Column("connection_name", sa.String(64)),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("arguments", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_message", sa.Text),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("duration_ms", sa.Integer),
    )
    op.create_index("ix_tool_calls_user_id", "tool_calls", ["user", "id"])
    op.create_index("ix_tool_calls_run", "tool_calls", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_tool_calls_run", "tool_calls")
    op.drop_index("ix_tool_calls_user_id", "tool_calls")
    op.drop_table("tool_calls")
    op.drop_table("mcp_allowlist")
    op.drop_table("mcp_connections")
