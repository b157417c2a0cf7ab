"""The worker's hot-path statements, built once.

Building a SQLAlchemy statement costs more than SQLite takes to run it (measured: ~60% of
a claim-and-succeed cycle went to constructing and keying statements), so the
statements every task executes are constructed here once, with bound parameters.
"""

from __future__ import annotations

from sqlalchemy import bindparam, case, insert, literal, or_, select, update

from orchestrator.model.states import CLAIMABLE, AttemptOutcome, TaskState
from orchestrator.store.tables import attempts, runs, task_instances

ti = task_instances
_this_ti = (ti.c.run_id == bindparam("b_run"), ti.c.task_id == bindparam("b_task"),
            ti.c.attempt == bindparam("b_attempt"))
_this_attempt = (attempts.c.run_id == bindparam("b_run"),
                 attempts.c.task_id == bindparam("b_task"),
                 attempts.c.attempt == bindparam("b_attempt"))

_token = bindparam("b_token", type_=ti.c.token.type)
_holder = or_(ti.c.token == _token, _token.is_(None))
"""The claim's holder (``b_token``), or anyone acting on the attempt as a whole (None:
a worker giving up on a lost attempt, the coordinator timing one out)."""

CLAIM = update(ti).where(*_this_ti, ti.c.state.in_(CLAIMABLE)).values(
    state=TaskState.RUNNING, started_at=bindparam("b_now"), worker=bindparam("b_worker"),
    lease_expires_at=bindparam("b_lease"), token=_token,
    deadline=bindparam("b_deadline"),
).returning(ti.c.lost_attempts, ti.c.max_attempts, ti.c.map_item)

START_MAPPED = update(ti).where(*_this_ti, ti.c.state.in_(CLAIMABLE)).values(
    state=TaskState.RUNNING, started_at=bindparam("b_now"), worker=bindparam("b_worker"),
    error=None)
"""A mapped task's message starts it: no lease, its instances carry their own."""

RESULT_OF = select(ti.c.result).where(ti.c.run_id == bindparam("b_run"),
                                      ti.c.task_id == bindparam("b_task"))

START_ATTEMPT = insert(attempts).values(
    run_id=bindparam("b_run"), task_id=bindparam("b_task"), attempt=bindparam("b_attempt"),
    outcome=AttemptOutcome.RUNNING, worker=bindparam("b_worker"), pid=bindparam("b_pid"),
    celery_id=bindparam("b_celery_id"), started_at=bindparam("b_now"))

RESULTS_OF = select(ti.c.task_id, ti.c.result).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id.in_(bindparam("b_ids", expanding=True)))

PARAMS_OF = select(runs.c.params).where(runs.c.id == bindparam("b_run"))

RENEW_LEASE = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    lease_expires_at=bindparam("b_lease"))

SUCCEED = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    state=TaskState.SUCCESS, result=bindparam("b_result", type_=ti.c.result.type),
    finished_at=bindparam("b_now"), lease_expires_at=None, error=None, deadline=None)

END_ATTEMPT = update(attempts).where(*_this_attempt).values(
    outcome=bindparam("b_outcome"), finished_at=bindparam("b_now"))

RELEASE = update(ti).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id.in_(bindparam("b_ids", expanding=True)),
).values(
    remaining=ti.c.remaining - 1,
    failed_up=ti.c.failed_up + bindparam("b_f"),
    skipped_up=ti.c.skipped_up + bindparam("b_s"),
).returning(ti.c.task_id, ti.c.state, ti.c.remaining, ti.c.failed_up, ti.c.skipped_up)
"""One parent finished: each child counts it (the row lock orders racing parents)."""

_released = ((ti.c.remaining == 1) & (ti.c.failed_up == 0) & (ti.c.skipped_up == 0)
             & (ti.c.state == TaskState.PENDING))
RELEASE_ON_SUCCESS = update(ti).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id.in_(bindparam("b_ids", expanding=True)),
).values(
    # The hot path (a success reaching all_success children) in one statement. SET
    # expressions read the row as it was, so exactly one parent sees remaining = 1.
    remaining=ti.c.remaining - 1,
    state=case((_released, literal(TaskState.QUEUED.value)), else_=ti.c.state),
    queued_at=case((_released, bindparam("b_now", type_=ti.c.queued_at.type)),
                   else_=ti.c.queued_at),
).returning(ti.c.task_id, ti.c.attempt, ti.c.state, ti.c.remaining)

SETTLE = update(ti).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id.in_(bindparam("b_ids", expanding=True)),
    ti.c.state == TaskState.PENDING,
).values(
    state=bindparam("b_state"), queued_at=bindparam("b_queued_at", type_=ti.c.queued_at.type),
    finished_at=bindparam("b_finished_at", type_=ti.c.finished_at.type),
    error=bindparam("b_error"),
).returning(ti.c.task_id, ti.c.attempt)
"""A trigger rule decided: pending -> queued, skipped or upstream_failed, exactly once."""

COUNT_DOWN = update(runs).where(runs.c.id == bindparam("b_run")).values(
    unfinished=runs.c.unfinished - bindparam("b_finished"),
    failed_tasks=runs.c.failed_tasks + bindparam("b_failed"),
).returning(runs.c.unfinished, runs.c.failed_tasks)

MARK_RESENT = update(ti).where(*_this_ti).values(queued_at=bindparam("b_now"))
"""The reconciler decided to send the attempt again (its row is locked meanwhile)."""

# -- mapped tasks: what finishing one instance does (see store/mapping.py) ----------------

_mapped = (ti.c.run_id == bindparam("b_run"), ti.c.task_id == bindparam("b_parent"))

INSTANCE_DONE = update(ti).where(*_mapped, ti.c.state == TaskState.RUNNING).values(
    map_done=ti.c.map_done + 1, map_failed=ti.c.map_failed + bindparam("b_failed"),
).returning(ti.c.map_done, ti.c.map_failed, ti.c.map_count, ti.c.map_next)
"""Count an instance done; its row lock orders the instances of one mapped task."""

NEXT_PENDING = select(ti.c.map_index).where(
    ti.c.run_id == bindparam("b_run"), ti.c.map_parent == bindparam("b_parent"),
    ti.c.map_index >= bindparam("b_from"), ti.c.state == TaskState.PENDING,
).order_by(ti.c.map_index).limit(1)

MOVE_CURSOR = update(ti).where(*_mapped).values(map_next=bindparam("b_cursor"))

QUEUE_INSTANCE = update(ti).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id == bindparam("b_task"),
    ti.c.state == TaskState.PENDING,
).values(state=TaskState.QUEUED, queued_at=bindparam("b_now", type_=ti.c.queued_at.type),
         ).returning(ti.c.task_id, ti.c.attempt)
