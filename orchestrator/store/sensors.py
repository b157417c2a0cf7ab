"""Sensors between pokes wait in the database (``wake_at``), not in a worker or a countdown.

A poke that finds its condition unmet ends its attempt as ``rescheduled`` and leaves the
task ``up_for_reschedule``; a coordinator pass queues it again once due (:func:`wake`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from sqlalchemy import Connection

from orchestrator.model.states import AttemptOutcome
from orchestrator.store import sql_sensors as sql
from orchestrator.store import statements
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
    return Poke.RESCHEDULED, Change(run_id, ended=[
        AttemptEnd(task_id, attempt, AttemptOutcome.RESCHEDULED)])


def wake(conn: Connection, now: dt.datetime, limit: int = 100) -> list[Due]:
    """Queue the sensors whose next poke is due; returns the rows queued, to send.
    (A pooled sensor would be admitted here by the pools' rules instead.)"""
    queued = []
    for r in conn.execute(sql.DUE, {"b_now": now, "b_limit": limit}).all():
        if conn.execute(sql.WAKE, {"b_run": r.run_id, "b_task": r.task_id,
                                   "b_attempt": r.attempt, "b_now": now}).rowcount == 1:
            queued.append(Due(r.run_id, r.dag_id, r.task_id, r.attempt))
    return queued
