"""runs.notebook and runs.cell: the notebook and cell a call came from (exact lesson progress)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("notebook", sa.String(255)))
        batch.add_column(sa.Column("cell", sa.String(64)))
        batch.add_column(sa.Column("cell_position", sa.Integer))
        batch.add_column(sa.Column("cell_count", sa.Integer))
    op.create_index("ix_runs_tenant_notebook", "runs", ["tenant", "notebook"])


def downgrade() -> None:
    op.drop_index("ix_runs_tenant_notebook", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cell_count")
        batch.drop_column("cell_position")
        batch.drop_column("cell")
        batch.drop_column("notebook")
