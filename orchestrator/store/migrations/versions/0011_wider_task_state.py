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

_ATTEMPT_FK = ("fk_attempts_task_instance", "attempts", "task_instances",
               ["run_id", "task_id"])
_LOG_FK = ("fk_log_chunks_attempt", "log_chunks", "attempts",
           ["run_id", "task_id", "attempt"])


def _state_width(width: int, before: int) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("task_instances", "state", existing_type=sa.String(before),
                        type_=sa.String(width), existing_nullable=False)
        return
    # SQLite rebuilds a table to change a column, and dropping the old table deletes its
    # rows: with the foreign keys in place that cascades to every attempt and log chunk.
    # So the keys that point at a rebuilt table go first and come back last.
    for name, table, _, _ in (_LOG_FK, _ATTEMPT_FK):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="foreignkey")
    with op.batch_alter_table("task_instances") as batch:
        batch.alter_column("state", existing_type=sa.String(before), type_=sa.String(width),
                           existing_nullable=False)
    for name, table, target, key in (_ATTEMPT_FK, _LOG_FK):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(name, target, key, key, ondelete="CASCADE")


def upgrade() -> None:
    _state_width(20, 16)


def downgrade() -> None:
    _state_width(16, 20)
