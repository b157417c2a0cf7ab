"""Per task, how many parents finished failed and skipped (trigger rule inputs).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("failed_up", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("skipped_up", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("skipped_up")
        batch.drop_column("failed_up")
