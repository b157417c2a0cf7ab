"""What the coordinator reads and takes: stalled work, overdue work, named leases."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from orchestrator.model.states import TaskState
from orchestrator.store import statements as sql
from orchestrator.store.results import Overdue, Stalled


def take_stalled(conn: Connection, *, queued_before: dt.datetime, lost_before: dt.datetime,
                 limit: int, now: dt.datetime) -> list[Stalled]:
    """Queued (or due for retry) tasks due before ``queued_before`` that no worker took,
    tasks whose message could not be sent, and running tasks whose lease expired and that
    were not sent again since ``lost_before``: the caller is to send them again.

    Each is taken by one caller only: the rows are locked (on PostgreSQL ``FOR UPDATE
    SKIP LOCKED``, so coordinators running at once take disjoint rows, never waiting
    on each other) and their ``queued_at`` moves on in the same transaction."""
    rows = conn.execute(sql.STALLED, {"b_queued_before": queued_before,
                                      "b_lost_before": lost_before, "b_wall": time.time(),
                                      "b_now": now,
                                      "b_limit": limit}).all()
    if rows:
        conn.execute(sql.MARK_RESENT, [{"b_run": r.run_id, "b_task": r.task_id,
                                        "b_attempt": r.attempt, "b_now": now} for r in rows])
    return [Stalled(r.run_id, r.dag_id, r.task_id, r.attempt, TaskState(r.state), r.queued_at)
            for r in rows]


def overdue_tasks(conn: Connection, *, grace: float, limit: int) -> list[Overdue]:
    return [Overdue(*r) for r in conn.execute(sql.OVERDUE_TASKS, {
        "b_before": time.time() - grace, "b_limit": limit}).all()]


def overdue_runs(conn: Connection, *, limit: int, now: dt.datetime) -> list[str]:
    return list(conn.execute(sql.OVERDUE_RUNS, {"b_now": now, "b_limit": limit}).scalars())


def lead(conn: Connection, name: str, holder: str, ttl: float, wall: float) -> bool:
    """Hold lease ``name`` for ``ttl`` more seconds: True if ``holder`` has it now (it was
    free, had expired, or was already theirs)."""
    key = {"b_name": name, "b_holder": holder, "b_expires": wall + ttl}
    if conn.execute(sql.TAKE_LEASE, {**key, "b_wall": wall}).rowcount == 1:
        return True
    if conn.execute(sql.LEASE_EXISTS, key).first() is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(sql.INSERT_LEASE, key)
    except IntegrityError:
        return False  # another holder created it first
    return True


def release(conn: Connection, name: str, holder: str) -> None:
    conn.execute(sql.DROP_LEASE, {"b_name": name, "b_holder": holder})
