"""import positions: how far an import from a file has read, kept with the rows it wrote

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_positions",
        sa.Column("source", sa.String(64), primary_key=True),  # e.g. hub-audit
        # bytes of the source read; NULL: not yet imported into this database
        sa.Column("position", sa.BigInteger),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("import_positions")
