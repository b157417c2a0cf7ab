"""Logs per attempt, API tokens, the timings metrics derive from, keyset run indexes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("ready_at", UTCDateTime))
        batch.add_column(sa.Column("resends", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("queued_at", UTCDateTime))
        batch.add_column(sa.Column("ready_at", UTCDateTime))
    op.create_table(
        "log_chunks",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(["run_id", "task_id", "attempt"],
                                ["attempts.run_id", "attempts.task_id", "attempts.attempt"],
                                ondelete="CASCADE", name="fk_log_chunks_attempt"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime),
        sa.Column("revoked_at", UTCDateTime),
    )
    op.create_index("ix_runs_created_id", "runs", ["created_at", "id"])
    op.create_index("ix_runs_dag_created_id", "runs", ["dag_id", "created_at", "id"])
    op.create_index("ix_runs_state_created_id", "runs", ["state", "created_at", "id"])


def downgrade() -> None:
    for name in ("ix_runs_state_created_id", "ix_runs_dag_created_id", "ix_runs_created_id"):
        op.drop_index(name, "runs")
    op.drop_table("api_tokens")
    op.drop_table("log_chunks")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("ready_at")
        batch.drop_column("queued_at")
    with op.batch_alter_table("task_instances") as batch:
        batch.drop_column("resends")
        batch.drop_column("ready_at")
