"""Task states up to 20 characters: ``up_for_reschedule`` (a sensor between pokes) has 17.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.alter_column("state", existing_type=sa.String(16), type_=sa.String(20),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.alter_column("state", existing_type=sa.String(20), type_=sa.String(16),
                           existing_nullable=False)
