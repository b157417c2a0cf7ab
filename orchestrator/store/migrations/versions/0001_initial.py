"""Runs, task instances and attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dag_id", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("total_tasks", sa.Integer, nullable=False),
        sa.Column("unfinished", sa.Integer, nullable=False),
        sa.Column("failed_tasks", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.UniqueConstraint("dag_id", "idempotency_key", name="uq_runs_dag_idempotency_key"),
    )
    op.create_index("ix_runs_dag_created", "runs", ["dag_id", "created_at"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_table(
        "task_instances",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("task_id", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lost_attempts", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("result", Json),
        sa.Column("error", sa.Text),
        sa.Column("worker", sa.String(200)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("queued_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("finished_at", UTCDateTime),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE",
                                name="fk_task_instances_run"),
    )
    op.create_index("ix_task_instances_state", "task_instances", ["state", "run_id"])
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("task_id", sa.String(100), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(200)),
        sa.Column("pid", sa.Integer),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("error_type", sa.String(200)),
        sa.Column("error_message", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.ForeignKeyConstraint(["run_id", "task_id"],
                                ["task_instances.run_id", "task_instances.task_id"],
                                ondelete="CASCADE", name="fk_attempts_task_instance"),
    )


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("task_instances")
    op.drop_table("runs")
