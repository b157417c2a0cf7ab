"""The time by which a run must end (from the DAG's timeout), for the reconciler.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deadline", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deadline")
