"""DAG versions: each spec stored once, runs and attempts name theirs; unsent messages.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import Json, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dag_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("dag_id", sa.String(100), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("dag_version", sa.String(64)))
        batch.create_foreign_key("fk_runs_dag_version", "dag_versions", ["dag_version"],
                                 ["version"])
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("unsent", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("dag_version", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("dag_version")
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("unsent")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("fk_runs_dag_version", type_="foreignkey")
        batch.drop_column("dag_version")
    op.drop_table("dag_versions")
