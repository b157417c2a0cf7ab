"""Alerts: the notifications outbox, each delivery try, and run deadlines.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from orchestrator.model.limits import TASK_ID_COLUMN
from orchestrator.store.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("dag_id", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("task_id", sa.String(TASK_ID_COLUMN)),
        sa.Column("attempt", sa.Integer()),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", Json, nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", sa.Float()),
        sa.Column("lease_token", sa.String(32)),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_at"])
    op.create_index("ix_notifications_run", "notifications", ["run_id", "created_at"])
    op.create_table(
        "deliveries",
        sa.Column("notification_id", sa.String(32), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("outcome", sa.String(12)),
        sa.Column("status", sa.Integer()),
        sa.Column("detail", sa.Text()),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"],
                                ondelete="CASCADE", name="fk_deliveries_notification"),
    )
    op.create_table(
        "deadlines",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("dag_id", sa.String(100), nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("closed_at", UTCDateTime),
    )
    op.create_index("ix_deadlines_open", "deadlines", ["state", "due_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("notifications")
    op.drop_table("deadlines")
