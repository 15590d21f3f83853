"""artifacts (content-addressed media files), asynchronous jobs, non-token units of runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mime", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("prompt", sa.Text),
        sa.Column("run_id", sa.Integer),
        sa.Column("job_id", sa.String(40)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("meta", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_artifacts_user_created", "artifacts", ["user", "created_at"])
    op.create_index("ix_artifacts_session", "artifacts", ["session_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text),
        sa.Column("params", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("vendor_task_id", sa.String(200)),
        sa.Column("key_name", sa.String(120)),
        sa.Column("run_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("ix_jobs_user_created", "jobs", ["user", "created_at"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "run_units",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("images", sa.Integer),
        sa.Column("characters", sa.Integer),
        sa.Column("seconds", sa.Float),
        sa.Column("tasks", sa.Integer),
    )


def downgrade() -> None:
    for table in ("run_units", "jobs", "artifacts"):
        op.drop_table(table)
