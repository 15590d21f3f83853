"""suno_accounts and suno_assignments: the seed platform's Suno accounts, handed to people

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suno_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_enc", sa.Text, nullable=False),
        sa.Column("memo", sa.Text, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "suno_assignments",
        sa.Column("user", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64)),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("suno_accounts.id"), nullable=False),
        sa.Column("assigned_by", sa.String(128), nullable=False),
        sa.Column("assigned_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suno_assignments")
    op.drop_table("suno_accounts")
