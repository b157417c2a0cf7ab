"""The schema: DAG versions, runs, task instances (one per DAG node per run), attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from orchestrator.model.limits import TASK_ID_COLUMN

metadata = MetaData()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value  # type: ignore[no-any-return]


Json = JSON().with_variant(JSONB(), "postgresql")

dag_versions = Table(
    "dag_versions", metadata,
    # sha256 of the spec's canonical JSON (model.compiled): each version stored once.
    Column("version", String(64), primary_key=True),
    Column("dag_id", String(100), nullable=False),
    Column("spec", Json, nullable=False),
    Column("source", Text),
    Column("created_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("dag_id", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Json, nullable=False),
    Column("idempotency_key", String(200)),
    Column("total_tasks", Integer, nullable=False),
    # Counted down by the transaction that finishes a task: the one that reaches 0 ends
    # the run, exactly once, without a COUNT(*) race.
    Column("unfinished", Integer, nullable=False),
    # Leaves that failed or were upstream_failed: the run fails if any did (as in Airflow).
    Column("failed_tasks", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("deadline", UTCDateTime),
    # The DAG version it was submitted with: workers plan from it, never from a file
    # that may have changed since.
    Column("dag_version", String(64)),
    # How it started (manual, schedule, backfill, event, asset), and for a scheduled or
    # backfilled run its logical time and data interval [start, end), stored in UTC.
    Column("trigger", String(16), nullable=False, server_default="manual"),
    Column("logical_time", UTCDateTime),
    Column("interval_start", UTCDateTime),
    Column("interval_end", UTCDateTime),
    # What triggered it: an event's payload, or the asset events it consumed.
    Column("payload", Json),
    Column("backfill_id", String(32)),
    UniqueConstraint("dag_id", "idempotency_key", name="uq_runs_dag_idempotency_key"),
    ForeignKeyConstraint(["dag_version"], ["dag_versions.version"],
                         name="fk_runs_dag_version"),
)
Index("ix_runs_dag_created", runs.c.dag_id, runs.c.created_at)
Index("ix_runs_state", runs.c.state)
# Keyset pages of runs, newest first, with or without a DAG or state filter.
Index("ix_runs_created_id", runs.c.created_at, runs.c.id)
Index("ix_runs_dag_created_id", runs.c.dag_id, runs.c.created_at, runs.c.id)
Index("ix_runs_state_created_id", runs.c.state, runs.c.created_at, runs.c.id)
# One run per logical time per DAG, whoever creates it (any coordinator, a backfill, the
# API): the last guard against a duplicate scheduled run. NULLs (manual runs) never clash.
Index("uq_runs_dag_logical", runs.c.dag_id, runs.c.logical_time, unique=True)
Index("ix_runs_backfill", runs.c.backfill_id, runs.c.state)

task_instances = Table(
    "task_instances", metadata,
    Column("run_id", String(32), primary_key=True),
    # An instance id is its mapped task's id plus "[index]" (model.limits).
    Column("task_id", String(TASK_ID_COLUMN), primary_key=True),
    Column("state", String(20), nullable=False),  # up_for_reschedule: 17
    Column("attempt", Integer, nullable=False, default=1),
    Column("max_attempts", Integer, nullable=False),
    Column("lost_attempts", Integer, nullable=False, default=0),
    # Upstream tasks not yet succeeded; the join fires when a parent's success takes it to 0.
    Column("remaining", Integer, nullable=False),
    # Parents that finished failed (or upstream_failed) / skipped: a trigger rule's inputs.
    Column("failed_up", Integer, nullable=False, server_default="0"),
    Column("skipped_up", Integer, nullable=False, server_default="0"),
    Column("result", Json),
    Column("error", Text),
    Column("worker", String(200)),
    Column("lease_expires_at", Float),
    # The running attempt's fence (set by the claim, checked by its result and lease
    # renewals) and the wall time by which its timeout says it must have ended.
    Column("token", String(32)),
    Column("deadline", Float),
    # When its message went out (or, waiting for a retry, when that is due); the
    # reconciler resends what no worker took well after it.
    Column("queued_at", UTCDateTime),
    # When a parent's end made it ready (the transaction that released it): a hand-off's
    # start, for the metrics. Not moved by retries or resends.
    Column("ready_at", UTCDateTime),
    # Times the reconciler sent its message again (lost or never taken).
    Column("resends", Integer, nullable=False, server_default="0"),
    # Its message could not be sent (broker unreachable): the reconciler's next pass
    # sends it, without waiting for the requeue interval.
    Column("unsent", Boolean, nullable=False, server_default=false()),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # A mapped task's row stands for all its instances: map_count items, map_next the
    # next to queue (the bound on instances in flight), map_done/map_failed counted by the
    # transactions that finish instances; the one that finishes the last ends it.
    Column("map_count", Integer),
    Column("map_next", Integer),
    Column("map_done", Integer),
    Column("map_failed", Integer),
    # An instance of a mapped task (task_id "name[i]"): its mapped task, index and item.
    Column("map_parent", String(100)),
    Column("map_index", Integer),
    Column("map_item", Json),
    # Slots: the pool it takes pool_slots of (NULL: the default pool), and its DAG with
    # that DAG's max_active_tasks when it has one (dag_limit, dag_cap). priority orders
    # waiters. A mapped task's own row takes none (0): its instances do.
    Column("pool", String(100)),
    Column("pool_slots", Integer, nullable=False, server_default="1"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("dag_limit", String(100)),
    Column("dag_cap", Integer),
    # A sensor between pokes: when the coordinator sends it again, and the wall time its
    # timeout ends at (set by its first poke).
    Column("wake_at", UTCDateTime),
    Column("sensor_until", Float),
    ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE",
                         name="fk_task_instances_run"),
)
Index("ix_task_instances_state", task_instances.c.state, task_instances.c.run_id)
# Partial: only instances of mapped tasks are in it, so other rows' writes never touch it.
_instance = task_instances.c.map_parent.isnot(None)
Index("ix_task_instances_map", task_instances.c.run_id, task_instances.c.map_parent,
      task_instances.c.map_index, sqlite_where=_instance, postgresql_where=_instance)

_pooled = task_instances.c.pool.isnot(None)
Index("ix_task_instances_pool", task_instances.c.pool, task_instances.c.state,
      sqlite_where=_pooled, postgresql_where=_pooled)
_limited = task_instances.c.dag_limit.isnot(None)
Index("ix_task_instances_dag_limit", task_instances.c.dag_limit, task_instances.c.state,
      sqlite_where=_limited, postgresql_where=_limited)

attempts = Table(
    "attempts", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("task_id", String(TASK_ID_COLUMN), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("outcome", String(16), nullable=False),
    Column("worker", String(200)),
    Column("pid", Integer),
    Column("celery_id", String(64)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("error_type", String(200)),
    Column("error_message", Text),
    Column("traceback", Text),
    # The version of the DAG the worker that ran it had loaded (it may differ from the
    # run's when a file changed and that worker has not seen the change).
    Column("dag_version", String(64)),
    # From its task's row at the claim: queue wait is started_at - queued_at; a hand-off
    # (parent's end -> this start) is started_at - ready_at when it was released so.
    Column("queued_at", UTCDateTime),
    Column("ready_at", UTCDateTime),
    ForeignKeyConstraint(["run_id", "task_id"],
                         ["task_instances.run_id", "task_instances.task_id"],
                         ondelete="CASCADE", name="fk_attempts_task_instance"),
)

log_chunks = Table(
    "log_chunks", metadata,
    # One attempt's output in flush order: seq counts from 1 per attempt, so a reader
    # (or an SSE client's Last-Event-ID) resumes after the last one it saw.
    Column("run_id", String(32), primary_key=True),
    Column("task_id", String(TASK_ID_COLUMN), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Text, nullable=False),
    ForeignKeyConstraint(["run_id", "task_id", "attempt"],
                         ["attempts.run_id", "attempts.task_id", "attempts.attempt"],
                         ondelete="CASCADE", name="fk_log_chunks_attempt"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    # sha256 of the token: the token itself is shown once, when it is made, and never kept.
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

leases = Table(
    "leases", metadata,
    # A named role only one process may hold at a time (the SQLite reconciler).
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)

dags = Table(
    "dags", metadata,
    # What the scheduler knows of a DAG: registered from the DAG folder, so the next fire
    # is a function of these rows alone (no timer in any process's memory).
    Column("dag_id", String(100), primary_key=True),
    Column("version", String(64)),
    Column("paused", Boolean, nullable=False, server_default=false()),
    # The schedule as the spec gives it (expression or trigger, zone, catchup, overlap),
    # and a hash of it: a changed schedule starts over from now.
    Column("schedule", Json),
    Column("schedule_key", String(64)),
    Column("next_fire", UTCDateTime),
    Column("last_fire", UTCDateTime),
    Column("skipped", Integer, nullable=False, server_default="0"),
    Column("max_active_runs", Integer),
    Column("max_active_tasks", Integer),
    Column("updated_at", UTCDateTime),
)
Index("ix_dags_next_fire", dags.c.next_fire)

dag_triggers = Table(
    "dag_triggers", metadata,
    # A DAG scheduled on a named event or on assets: who consumes what.
    Column("dag_id", String(100), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("name", String(200), primary_key=True),
)
Index("ix_dag_triggers_name", dag_triggers.c.kind, dag_triggers.c.name)

events = Table(
    "events", metadata,
    # A named event (API, CLI) or an asset update (a producing task's success).
    Column("id", String(32), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(200), nullable=False),
    Column("payload", Json),
    Column("run_id", String(32)),
    Column("task_id", String(TASK_ID_COLUMN)),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_events_name", events.c.kind, events.c.name, events.c.created_at)

event_queue = Table(
    "event_queue", metadata,
    # One row per consumer DAG per event: pending (run_id NULL) until a run consumes it.
    Column("dag_id", String(100), primary_key=True),
    Column("event_id", String(32), primary_key=True),
    Column("run_id", String(32)),
    Column("consumed_at", UTCDateTime),
    ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE",
                         name="fk_event_queue_event"),
)
Index("ix_event_queue_pending", event_queue.c.dag_id, event_queue.c.run_id)

backfills = Table(
    "backfills", metadata,
    # A backfill's runs are created lazily as its slots free: cursor is the next logical
    # time to handle, so a year of hourly runs is one row until they are due.
    Column("id", String(32), primary_key=True),
    Column("dag_id", String(100), nullable=False),
    Column("version", String(64)),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("reprocess", String(8), nullable=False),
    Column("max_active", Integer, nullable=False),
    Column("cursor", UTCDateTime),
    Column("total", Integer, nullable=False),
    Column("created", Integer, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)
Index("ix_backfills_state", backfills.c.state)

pools = Table(
    "pools", metadata,
    # Named slot pools; slots NULL is unbounded (the default pool, until it is set).
    # Usage is never a counter: it is the slots of the task rows that hold one, counted
    # under this row's lock, so a dead holder cannot leak a slot.
    Column("name", String(100), primary_key=True),
    Column("slots", Integer),
    Column("description", Text, nullable=False, server_default=""),
    Column("updated_at", UTCDateTime),
)

notifications = Table(
    "notifications", metadata,
    # The outbox: one row per alert (an event for one rule or callback), written by the
    # transaction whose state change caused it; any coordinator delivers it under a lease.
    # ``id`` is the receivers' dedupe key (X-Orchestrator-Event-Id).
    Column("id", String(32), primary_key=True),
    Column("event", String(20), nullable=False),
    Column("dag_id", String(100), nullable=False),
    Column("run_id", String(32), nullable=False),
    Column("task_id", String(TASK_ID_COLUMN)),
    Column("attempt", Integer),
    Column("channel", String(16), nullable=False),
    Column("target", Json, nullable=False),
    Column("payload", Json, nullable=False),
    Column("state", String(12), nullable=False),
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("next_at", UTCDateTime, nullable=False),
    Column("lease_until", Float),
    Column("lease_token", String(32)),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
)
Index("ix_notifications_due", notifications.c.state, notifications.c.next_at)
Index("ix_notifications_run", notifications.c.run_id, notifications.c.created_at)

deliveries = Table(
    "deliveries", metadata,
    # Each try of a notification, with how it went.
    Column("notification_id", String(32), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(12)),
    Column("status", Integer),
    Column("detail", Text),
    ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE",
                         name="fk_deliveries_notification"),
)

deadlines = Table(
    "deadlines", metadata,
    # Written with a run whose DAG has a deadline; the run's final transaction closes it,
    # and only a coordinator that finds it still open past due_at marks it missed.
    Column("run_id", String(32), primary_key=True),
    Column("dag_id", String(100), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("state", String(8), nullable=False),
    Column("closed_at", UTCDateTime),
)
Index("ix_deadlines_open", deadlines.c.state, deadlines.c.due_at)
