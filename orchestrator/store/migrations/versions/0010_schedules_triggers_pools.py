"""Schedules, backfills, events and assets, sensors, pools and priorities.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.store.tables import Json, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("trigger", sa.String(16), nullable=False,
                                   server_default="manual"))
        batch.add_column(sa.Column("logical_time", UTCDateTime))
        batch.add_column(sa.Column("interval_start", UTCDateTime))
        batch.add_column(sa.Column("interval_end", UTCDateTime))
        batch.add_column(sa.Column("payload", Json))
        batch.add_column(sa.Column("backfill_id", sa.String(32)))
    op.create_index("uq_runs_dag_logical", "runs", ["dag_id", "logical_time"], unique=True)
    op.create_index("ix_runs_backfill", "runs", ["backfill_id", "state"])
    with op.batch_alter_table("task_instances") as batch:
        batch.add_column(sa.Column("pool", sa.String(100)))
        batch.add_column(sa.Column("pool_slots", sa.Integer, nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("dag_limit", sa.String(100)))
        batch.add_column(sa.Column("wake_at", UTCDateTime))
        batch.add_column(sa.Column("sensor_until", sa.Float))
    pooled = sa.text("pool IS NOT NULL")
    op.create_index("ix_task_instances_pool", "task_instances", ["pool", "state"],
                    sqlite_where=pooled, postgresql_where=pooled)
    limited = sa.text("dag_limit IS NOT NULL")
    op.create_index("ix_task_instances_dag_limit", "task_instances", ["dag_limit", "state"],
                    sqlite_where=limited, postgresql_where=limited)
    op.create_table(
        "dags",
        sa.Column("dag_id", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(64)),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("schedule", Json),
        sa.Column("schedule_key", sa.String(64)),
        sa.Column("next_fire", UTCDateTime),
        sa.Column("last_fire", UTCDateTime),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_active_runs", sa.Integer),
        sa.Column("max_active_tasks", sa.Integer),
        sa.Column("updated_at", UTCDateTime),
    )
    op.create_index("ix_dags_next_fire", "dags", ["next_fire"])
    op.create_table(
        "dag_triggers",
        sa.Column("dag_id", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
    )
    op.create_index("ix_dag_triggers_name", "dag_triggers", ["kind", "name"])
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("payload", Json),
        sa.Column("run_id", sa.String(32)),
        sa.Column("task_id", sa.String(128)),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_events_name", "events", ["kind", "name", "created_at"])
    op.create_table(
        "event_queue",
        sa.Column("dag_id", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(32)),
        sa.Column("consumed_at", UTCDateTime),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE",
                                name="fk_event_queue_event"),
    )
    op.create_index("ix_event_queue_pending", "event_queue", ["dag_id", "run_id"])
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dag_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(64)),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("reprocess", sa.String(8), nullable=False),
        sa.Column("max_active", sa.Integer, nullable=False),
        sa.Column("cursor", UTCDateTime),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
    )
    op.create_index("ix_backfills_state", "backfills", ["state"])
    pools = op.create_table(
        "pools",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("slots", sa.Integer),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime),
    )
    op.bulk_insert(pools, [{"name": "default", "slots": None,
                            "description": "tasks that name no pool (unbounded until set)"}])


def downgrade() -> None:
    for table in ("pools", "backfills", "event_queue", "events", "dag_triggers", "dags"):
        op.drop_table(table)
    op.drop_index("ix_task_instances_dag_limit", "task_instances")
    op.drop_index("ix_task_instances_pool", "task_instances")
    with op.batch_alter_table("task_instances") as batch:
        for name in ("sensor_until", "wake_at", "dag_limit", "priority", "pool_slots", "pool"):
            batch.drop_column(name)
    op.drop_index("ix_runs_backfill", "runs")
    op.drop_index("uq_runs_dag_logical", "runs")
    with op.batch_alter_table("runs") as batch:
        for name in ("backfill_id", "payload", "interval_end", "interval_start",
                     "logical_time", "trigger"):
            batch.drop_column(name)
