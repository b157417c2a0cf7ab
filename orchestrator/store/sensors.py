"""Sensors between pokes wait in the database (``wake_at``), not in a worker or a countdown.

A poke that finds its condition unmet ends its attempt as ``rescheduled`` and leaves the
task ``up_for_reschedule``; a coordinator pass queues it again once due (:func:`wake`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from sqlalchemy import Connection

from orchestrator.model.states import AttemptOutcome
from orchestrator.store import admission, statements
from orchestrator.store import sql_sensors as sql
from orchestrator.store.results import AttemptEnd, Change


class Poke(enum.StrEnum):
    RESCHEDULED = "rescheduled"
    TIMED_OUT = "timed_out"
    """Its next poke would start after the timeout: the caller fails it (SensorTimeout)."""
    SUPERSEDED = "superseded"


@dataclasses.dataclass(frozen=True)
class Due:
    run_id: str
    dag_id: str
    task_id: str
    attempt: int


def reschedule(conn: Connection, run_id: str, task_id: str, attempt: int, token: str | None,
               *, poke_interval: float, timeout: float, started: float, wall: float,
               now: dt.datetime) -> tuple[Poke, Change]:
    """One compare-and-set, fenced like a success (running, attempt, token)."""
    key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
    res = conn.execute(sql.RESCHEDULE, {
        **key, "b_token": token, "b_first_until": started + timeout,
        "b_next_poke": wall + poke_interval,
        "b_wake": now + dt.timedelta(seconds=poke_interval)})
    if res.rowcount != 1:
        row = conn.execute(statements.RUNNING_ROW, key).first()
        alive = row is not None and row.state == "running" and row.attempt == attempt
        return (Poke.TIMED_OUT if alive else Poke.SUPERSEDED), Change.nothing(run_id)
    conn.execute(statements.END_ATTEMPT, {**key, "b_outcome": AttemptOutcome.RESCHEDULED,
                                          "b_now": now})
    change = Change(run_id, ended=[AttemptEnd(task_id, attempt, AttemptOutcome.RESCHEDULED)])
    # asleep, it holds no slot: the next waiter gets it now
    for a in admission.release_row(conn, run_id, task_id, now):
        change.elsewhere.append((a.run_id, a.task_id, a.attempt))
    return Poke.RESCHEDULED, change


def wake(conn: Connection, now: dt.datetime, limit: int = 100) -> list[Due]:
    """Queue the sensors whose next poke is due; returns the rows queued, to send. One
    that needs a pool slot waits for it, and those its pool admits are returned."""
    queued: list[Due] = []
    held: list[Due] = []
    for r in conn.execute(sql.DUE, {"b_now": now, "b_limit": limit}).all():
        if conn.execute(sql.WAKE, {"b_run": r.run_id, "b_task": r.task_id,
                                   "b_attempt": r.attempt, "b_now": now}).rowcount == 1:
            (held if r.gated else queued).append(Due(r.run_id, r.dag_id, r.task_id, r.attempt))
    if not held and not admission.default_bounded(conn):
        return queued
    held += queued
    queued = []
    dags = {d.run_id: d.dag_id for d in held}
    for a in admission.hold_and_fill(conn, [(d.run_id, d.task_id) for d in held], now):
        dag_id = dags.get(a.run_id) or conn.execute(
            statements.RUN_HEADER, {"b_run": a.run_id}).one().dag_id
        queued.append(Due(a.run_id, dag_id, a.task_id, a.attempt))
    return queued
