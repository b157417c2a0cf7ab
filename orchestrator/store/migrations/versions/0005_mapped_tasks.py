"""Mapped tasks: a mapped task's counters, and its instances' parent, index and item.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import Json

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COUNTERS = ("map_count", "map_next", "map_done", "map_failed")


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer))
        batch.add_column(sa.Column("map_parent", sa.String(100)))
        batch.add_column(sa.Column("map_index", sa.Integer))
        batch.add_column(sa.Column("map_item", Json))
    instance = sa.text("map_parent IS NOT NULL")
    op.create_index("ix_task_instances_map", "task_instances",
                    ["run_id", "map_parent", "map_index"],
                    sqlite_where=instance, postgresql_where=instance)


def downgrade() -> None:
    op.drop_index("ix_task_instances_map", table_name="task_instances")
    with op.batch_alter_table("task_instances") as batch:
        for name in (*_COUNTERS, "map_parent", "map_index", "map_item"):
            batch.drop_column(name)
