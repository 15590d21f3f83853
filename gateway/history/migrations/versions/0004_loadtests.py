"""load tests: runs, their rounds and samples; saved lesson recordings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loadtest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),  # mock, real
        # running, done, cancelled, stopped_at_cap, failed, interrupted
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),  # JSON, fully spelled out
        sa.Column("cost_cap_micro_usd", sa.Integer),
        sa.Column("estimate_micro_usd", sa.Integer),
        sa.Column("spent_micro_usd", sa.Integer, nullable=False, server_default="0"),
        sa.Column("requests_planned", sa.Integer, nullable=False),
        sa.Column("requests_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("settings", sa.Text),  # JSON: the mock's latency settings during the run
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_table(
        "loadtest_rounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("loadtest_id", sa.Integer,
                  sa.ForeignKey("loadtest_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),  # burst, lesson
        sa.Column("model", sa.String(200)),  # NULL for a lesson of several models
        sa.Column("users", sa.Integer, nullable=False),
        sa.Column("requests_planned", sa.Integer, nullable=False),
        sa.Column("requests_done", sa.Integer, nullable=False, server_default="0"),
        # pending, running, done, cancelled, stopped_at_cap, skipped
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("uq_loadtest_rounds_idx", "loadtest_rounds", ["loadtest_id", "idx"],
                    unique=True)
    op.create_table(
        "loadtest_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("loadtest_id", sa.Integer,
                  sa.ForeignKey("loadtest_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("round_idx", sa.Integer, nullable=False),
        sa.Column("users", sa.Integer, nullable=False),
        sa.Column("user_idx", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),  # the user's n-th call (lesson step)
        sa.Column("run_id", sa.Integer),  # the call's row in runs (NULL: refused unrecorded)
        sa.Column("provider", sa.String(32)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # ok, error, cancelled
        sa.Column("error_code", sa.String(64)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("queue_wait_ms", sa.Float),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("cost_micro_usd", sa.Integer),
    )
    op.create_index("ix_loadtest_samples_run_round", "loadtest_samples",
                    ["loadtest_id", "round_idx"])
    op.create_table(
        "loadtest_lessons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("user", sa.String(128)),
        sa.Column("source", sa.String(16)),
        sa.Column("since", sa.Float),
        sa.Column("until", sa.Float),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("uq_loadtest_lessons_tenant_name", "loadtest_lessons", ["tenant", "name"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_loadtest_lessons_tenant_name", "loadtest_lessons")
    op.drop_index("ix_loadtest_samples_run_round", "loadtest_samples")
    op.drop_index("uq_loadtest_rounds_idx", "loadtest_rounds")
    for table in ("loadtest_lessons", "loadtest_samples", "loadtest_rounds", "loadtest_runs"):
        op.drop_table(table)
