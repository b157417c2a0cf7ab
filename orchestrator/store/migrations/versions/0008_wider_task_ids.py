"""Task id columns wide enough for a mapped instance of the longest id at the largest
index (a 100-character mapped id overflowed them on PostgreSQL).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FK = "fk_attempts_task_instance"
_KEY = ["run_id", "task_id"]


def _widen(width: int, before: int) -> None:
    # The foreign key goes first and comes back last: on SQLite the batch rebuilds
    # task_instances, and dropping it with the key in place would cascade-delete every
    # attempt row.
    with op.batch_alter_table("attempts") as batch:
        batch.drop_constraint(_FK, type_="foreignkey")
    for table in ("task_instances", "attempts"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("task_id", type_=sa.String(width),
                               existing_type=sa.String(before), existing_nullable=False)
    with op.batch_alter_table("attempts") as batch:
        batch.create_foreign_key(_FK, "task_instances", _KEY, _KEY, ondelete="CASCADE")


def upgrade() -> None:
    _widen(128, 100)


def downgrade() -> None:
    _widen(100, 128)
