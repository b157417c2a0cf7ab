"""A task row carries its DAG's ``max_active_tasks`` (``dag_cap``) beside ``dag_limit``, so
the transaction that frees a slot can admit a waiter of any DAG without reading its plan.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_instances", sa.Column("dag_cap", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("dag_cap")
