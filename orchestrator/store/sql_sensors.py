"""The statements sensors run: a poke that found nothing reschedules, the coordinator wakes."""

from __future__ import annotations

from sqlalchemy import Float, bindparam, func, or_, select, update

from orchestrator.model.states import RunState, TaskState
from orchestrator.store.tables import runs, task_instances

ti = task_instances
_now = bindparam("b_now", type_=ti.c.queued_at.type)
_token = bindparam("b_token", type_=ti.c.token.type)
_this_ti = (ti.c.run_id == bindparam("b_run"), ti.c.task_id == bindparam("b_task"),
            ti.c.attempt == bindparam("b_attempt"))
_until = func.coalesce(ti.c.sensor_until, bindparam("b_first_until", type_=Float()))

RESCHEDULE = update(ti).where(
    *_this_ti, ti.c.state == TaskState.RUNNING, or_(ti.c.token == _token, _token.is_(None)),
    # the next poke still starts before the timeout ends: otherwise this one times out
    _until >= bindparam("b_next_poke", type_=Float()),
).values(
    state=TaskState.UP_FOR_RESCHEDULE, attempt=ti.c.attempt + 1,
    # a poke that found nothing spends no retry
    max_attempts=ti.c.max_attempts + 1, sensor_until=_until,
    wake_at=bindparam("b_wake", type_=ti.c.wake_at.type), lease_expires_at=None,
    deadline=None, token=None)

DUE = (
    select(ti.c.run_id, runs.c.dag_id, ti.c.task_id, ti.c.attempt,
           (ti.c.pool.isnot(None) | ti.c.dag_limit.isnot(None)).label("gated"))
    .join(runs, runs.c.id == ti.c.run_id)
    .where(ti.c.state == TaskState.UP_FOR_RESCHEDULE, ti.c.wake_at <= _now,
           runs.c.state == RunState.RUNNING)
    .order_by(ti.c.wake_at).limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True, of=ti))
"""Sensors whose next poke is due; SKIP LOCKED lets coordinators take disjoint rows."""

WAKE = update(ti).where(*_this_ti, ti.c.state == TaskState.UP_FOR_RESCHEDULE).values(
    state=TaskState.QUEUED, queued_at=_now, wake_at=None, unsent=False)
