"""Every statement the store runs, built once, with bound parameters (``b_*``).

Building a SQLAlchemy statement costs more than SQLite takes to run it (measured: ~60% of
a claim-and-succeed cycle went to constructing and keying statements), so none is built
per call. Lists go in as expanding parameters (``b_ids``); the store's modules chunk them
under every backend's bound-parameter limit. Each transition is a compare-and-set: its
WHERE clause says which state and attempt it expects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from orchestrator import errors
from orchestrator.model.records import LOST_WORKER_MARKER
from orchestrator.model.states import (
    CLAIMABLE,
    FINISHED_RUN,
    FINISHED_TASK,
    UNFINISHED_TASK,
    AttemptOutcome,
    RunState,
    TaskState,
)
from orchestrator.store.tables import (
    attempts,
    backfills,
    dag_versions,
    deadlines,
    events,
    leases,
    log_chunks,
    notifications,
    pools,
    runs,
    task_instances,
)

ti = task_instances
_run = ti.c.run_id == bindparam("b_run")
_ids = ti.c.task_id.in_(bindparam("b_ids", expanding=True))
_this_ti = (_run, ti.c.task_id == bindparam("b_task"), ti.c.attempt == bindparam("b_attempt"))
_this_attempt = (attempts.c.run_id == bindparam("b_run"),
                 attempts.c.task_id == bindparam("b_task"),
                 attempts.c.attempt == bindparam("b_attempt"))
_now = bindparam("b_now", type_=ti.c.queued_at.type)

_token = bindparam("b_token", type_=ti.c.token.type)
_holder = or_(ti.c.token == _token, _token.is_(None))
"""The claim's holder (``b_token``), or anyone acting on the attempt as a whole (None:
a worker giving up on a lost attempt, the coordinator timing one out)."""

# -- versions and submit ----------------------------------------------------------------

VERSION_EXISTS = select(dag_versions.c.version).where(
    dag_versions.c.version == bindparam("b_version"))
VERSION_OF = select(dag_versions.c.spec, dag_versions.c.source).where(
    dag_versions.c.version == bindparam("b_version"))

RUN_BY_KEY = select(runs.c.id, runs.c.params).where(
    runs.c.dag_id == bindparam("b_dag"), runs.c.idempotency_key == bindparam("b_key"))
INSERT_RUN = insert(runs)
INSERT_TASKS = insert(ti)
RUN_HEADER = select(runs.c.dag_id, runs.c.dag_version, runs.c.params, runs.c.trigger,
                    runs.c.logical_time, runs.c.interval_start, runs.c.interval_end,
                    runs.c.payload).where(runs.c.id == bindparam("b_run"))
QUEUED_TASKS = select(ti.c.task_id, ti.c.attempt).where(_run, ti.c.state == TaskState.QUEUED)

MARK_UNSENT = update(ti).where(
    _run, _ids, ti.c.state.in_([TaskState.QUEUED, TaskState.UP_FOR_RETRY])).values(unsent=True)
"""Their messages could not be sent: the reconciler's next pass sends them."""

# -- the worker's hot path ----------------------------------------------------------------

_due = or_(ti.c.state != TaskState.UP_FOR_RETRY, ti.c.queued_at.is_(None),
           ti.c.queued_at <= _now)
"""An attempt waiting out its retry backoff is claimable once due (``queued_at``)."""

CLAIM = update(ti).where(*_this_ti, ti.c.state.in_(CLAIMABLE), _due).values(
    state=TaskState.RUNNING, started_at=bindparam("b_now"), worker=bindparam("b_worker"),
    lease_expires_at=bindparam("b_lease"), token=_token,
    deadline=bindparam("b_deadline"),
).returning(ti.c.lost_attempts, ti.c.max_attempts, ti.c.map_item)

RUNNING_ROW = select(ti.c.state, ti.c.attempt, ti.c.lost_attempts, ti.c.max_attempts,
                     ti.c.lease_expires_at, ti.c.map_item, ti.c.deadline, ti.c.queued_at).where(
    _run, ti.c.task_id == bindparam("b_task"))

TAKE_OVER = update(ti).where(
    *_this_ti, ti.c.state == TaskState.RUNNING, ti.c.lease_expires_at < bindparam("b_wall"),
).values(attempt=ti.c.attempt + 1, lost_attempts=ti.c.lost_attempts + 1,
         started_at=bindparam("b_now"), worker=bindparam("b_worker"),
         lease_expires_at=bindparam("b_lease"), token=_token, deadline=bindparam("b_deadline"))
"""A running attempt whose lease nobody renews is taken over by the next attempt."""

LOSE_ATTEMPT = update(attempts).where(*_this_attempt).values(
    outcome=AttemptOutcome.LOST, finished_at=bindparam("b_now"),
    error_type=errors.WorkerLost.__name__,
    error_message="the worker stopped renewing its lease")

_this_log = (log_chunks.c.run_id == bindparam("b_run"),
             log_chunks.c.task_id == bindparam("b_task"),
             log_chunks.c.attempt == bindparam("b_attempt"))
_next_seq = select(func.coalesce(func.max(log_chunks.c.seq), 0) + 1).where(
    *_this_log).scalar_subquery()
LOST_MARKER = insert(log_chunks).from_select(
    ["run_id", "task_id", "attempt", "seq", "at", "data"],
    select(attempts.c.run_id, attempts.c.task_id, attempts.c.attempt, _next_seq,
           bindparam("b_now", type_=log_chunks.c.at.type),
           literal(LOST_WORKER_MARKER, type_=log_chunks.c.data.type)).where(*_this_attempt))
"""Close a lost attempt's log, in the transaction that marks it lost: what its worker
flushed stays, and this says the rest is missing (its later writes are refused)."""

START_MAPPED = update(ti).where(*_this_ti, ti.c.state.in_(CLAIMABLE)).values(
    state=TaskState.RUNNING, started_at=bindparam("b_now"), worker=bindparam("b_worker"),
    error=None)
"""A mapped task's message starts it: no lease, its instances carry their own."""

RESULT_OF = select(ti.c.result).where(_run, ti.c.task_id == bindparam("b_task"))

def _to(column: str, name: str) -> BindParameter[Any]:
    return bindparam(name, type_=attempts.c[column].type)


_first_try = bindparam("b_first_try", type_=Boolean())
START_ATTEMPT = insert(attempts).from_select(
    ["run_id", "task_id", "attempt", "outcome", "worker", "pid", "celery_id", "started_at",
     "dag_version", "queued_at", "ready_at"],
    select(_to("run_id", "b_run"), _to("task_id", "b_task"), _to("attempt", "b_attempt"),
           literal(AttemptOutcome.RUNNING.value, type_=attempts.c.outcome.type),
           _to("worker", "b_worker"), _to("pid", "b_pid"), _to("celery_id", "b_celery_id"),
           _to("started_at", "b_now"), _to("dag_version", "b_version"),
           ti.c.queued_at,
           # A hand-off (see tables.py) ends here only for the attempt a parent's release
           # queued: a retry, a resend or a rerun has moved queued_at on since, and a
           # takeover (b_first_try false) is no first try.
           case((_first_try & (ti.c.ready_at == ti.c.queued_at), ti.c.ready_at)),
           ).where(_run, ti.c.task_id == bindparam("b_task")))
"""The attempt's row, with its task row's queued_at (and ready_at) copied in the database."""

RESULTS_OF = select(ti.c.task_id, ti.c.result).where(_run, _ids)

RENEW_LEASE = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    lease_expires_at=bindparam("b_lease"))

SUCCEED = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    state=TaskState.SUCCESS, result=bindparam("b_result", type_=ti.c.result.type),
    finished_at=bindparam("b_now"), lease_expires_at=None, error=None, deadline=None)

END_ATTEMPT = update(attempts).where(*_this_attempt).values(
    outcome=bindparam("b_outcome"), finished_at=bindparam("b_now"))

FAIL_FOR_RETRY = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    state=TaskState.UP_FOR_RETRY, attempt=ti.c.attempt + 1, error=bindparam("b_error"),
    lease_expires_at=None, deadline=None, queued_at=bindparam("b_due", type_=ti.c.queued_at.type))
"""The next attempt is due at ``b_due``: the reconciler resends it only well after that."""

FAIL = update(ti).where(*_this_ti, ti.c.state == TaskState.RUNNING, _holder).values(
    state=TaskState.FAILED, error=bindparam("b_error"), lease_expires_at=None, deadline=None,
    finished_at=bindparam("b_now"))

END_ATTEMPT_FAILED = update(attempts).where(*_this_attempt).values(
    outcome=AttemptOutcome.FAILED, finished_at=bindparam("b_now"),
    error_type=bindparam("b_error_type"), error_message=bindparam("b_message"),
    traceback=bindparam("b_traceback", type_=attempts.c.traceback.type))

# -- handing an outcome on (see advance.py) ----------------------------------------------

RELEASE = update(ti).where(_run, _ids).values(
    remaining=ti.c.remaining - 1,
    failed_up=ti.c.failed_up + bindparam("b_f"),
    skipped_up=ti.c.skipped_up + bindparam("b_s"),
).returning(ti.c.task_id, ti.c.state, ti.c.remaining, ti.c.failed_up, ti.c.skipped_up)
"""One parent finished: each child counts it (the row lock orders racing parents)."""

_released = ((ti.c.remaining == 1) & (ti.c.failed_up == 0) & (ti.c.skipped_up == 0)
             & (ti.c.state == TaskState.PENDING))
RELEASE_ON_SUCCESS = update(ti).where(_run, _ids).values(
    # The hot path (a success reaching all_success children) in one statement. SET
    # expressions read the row as it was, so exactly one parent sees remaining = 1.
    remaining=ti.c.remaining - 1,
    state=case((_released, literal(TaskState.QUEUED.value)), else_=ti.c.state),
    queued_at=case((_released, _now), else_=ti.c.queued_at),
    ready_at=case((_released, _now), else_=ti.c.ready_at),
).returning(ti.c.task_id, ti.c.attempt, ti.c.state, ti.c.remaining)

_queued_at = bindparam("b_queued_at", type_=ti.c.queued_at.type)
SETTLE = update(ti).where(_run, _ids, ti.c.state == TaskState.PENDING).values(
    # queued by a parent's end: ready then too (a hand-off's start, see tables.py)
    state=bindparam("b_state"), queued_at=_queued_at, ready_at=_queued_at,
    finished_at=bindparam("b_finished_at", type_=ti.c.finished_at.type),
    error=bindparam("b_error"),
).returning(ti.c.task_id, ti.c.attempt)
"""A trigger rule decided: pending -> queued, skipped or upstream_failed, exactly once."""

COUNT_DOWN = update(runs).where(runs.c.id == bindparam("b_run")).values(
    unfinished=runs.c.unfinished - bindparam("b_finished"),
    failed_tasks=runs.c.failed_tasks + bindparam("b_failed"),
).returning(runs.c.unfinished, runs.c.failed_tasks)

END_RUN = update(runs).where(runs.c.id == bindparam("b_run"),
                             runs.c.state == RunState.RUNNING).values(
    state=bindparam("b_state"), finished_at=bindparam("b_now")).returning(runs.c.backfill_id)

# -- mapped tasks (see mapping.py) ---------------------------------------------------------

_mapped = (_run, ti.c.task_id == bindparam("b_parent"))
_instances = (_run, ti.c.map_parent == bindparam("b_parent"))

INSTANCES = select(ti.c.task_id, ti.c.map_index, ti.c.state, ti.c.map_item,
                   ti.c.attempt).where(*_instances)

SKIP_BEYOND = update(ti).where(_run, _ids).values(
    state=TaskState.SKIPPED, finished_at=bindparam("b_now"), lease_expires_at=None,
    error="past the end of the list it was mapped over")

RESET_INSTANCE = update(ti).where(_run, ti.c.task_id == bindparam("b_task")).values(
    state=bindparam("b_state"), queued_at=_queued_at, ready_at=_queued_at,
    map_item=bindparam("b_item", type_=ti.c.map_item.type), attempt=ti.c.attempt + 1,
    max_attempts=ti.c.attempt - ti.c.lost_attempts + bindparam("b_budget"),
    result=None, error=None, worker=None, lease_expires_at=None, started_at=None,
    finished_at=None)
"""A rerun starts an instance over as its next attempt, so old messages stay fenced."""

LAID_OUT = update(ti).where(*_mapped).values(
    map_count=bindparam("b_count"), map_next=bindparam("b_next"), map_done=bindparam("b_done"),
    map_failed=0, result=None)

GROW_RUN = update(runs).where(runs.c.id == bindparam("b_run")).values(
    unfinished=runs.c.unfinished + bindparam("b_unfinished"),
    total_tasks=runs.c.total_tasks + bindparam("b_total"))

INSTANCE_DONE = update(ti).where(*_mapped, ti.c.state == TaskState.RUNNING).values(
    map_done=ti.c.map_done + 1, map_failed=ti.c.map_failed + bindparam("b_failed"),
).returning(ti.c.map_done, ti.c.map_failed, ti.c.map_count, ti.c.map_next)
"""Count an instance done; its row lock orders the instances of one mapped task."""

NEXT_PENDING = select(ti.c.map_index).where(
    *_instances, ti.c.map_index >= bindparam("b_from"), ti.c.state == TaskState.PENDING,
).order_by(ti.c.map_index).limit(1)

MOVE_CURSOR = update(ti).where(*_mapped).values(map_next=bindparam("b_cursor"))

QUEUE_INSTANCE = update(ti).where(
    _run, ti.c.task_id == bindparam("b_task"), ti.c.state == TaskState.PENDING,
).values(state=TaskState.QUEUED, queued_at=_now).returning(ti.c.task_id, ti.c.attempt)

INSTANCE_RESULTS = select(ti.c.result).where(
    *_instances, ti.c.state == TaskState.SUCCESS).order_by(ti.c.map_index)

END_MAPPED = update(ti).where(*_mapped, ti.c.state == TaskState.RUNNING).values(
    state=bindparam("b_state"), result=bindparam("b_result", type_=ti.c.result.type),
    error=bindparam("b_error"), finished_at=bindparam("b_now"))

# -- the reconciler ----------------------------------------------------------------------

STALLED = (
    select(ti.c.run_id, runs.c.dag_id, ti.c.task_id, ti.c.attempt, ti.c.state, ti.c.queued_at)
    .join(runs, runs.c.id == ti.c.run_id)
    .where(runs.c.state == RunState.RUNNING,
           (ti.c.state.in_([TaskState.QUEUED, TaskState.UP_FOR_RETRY])
            & ((ti.c.queued_at < bindparam("b_queued_before", type_=ti.c.queued_at.type))
               | ((ti.c.unsent == true()) & (ti.c.queued_at <= _now))))
           | ((ti.c.state == TaskState.RUNNING) & (ti.c.lease_expires_at < bindparam("b_wall"))
              & (ti.c.queued_at < bindparam("b_lost_before", type_=ti.c.queued_at.type))))
    .order_by(ti.c.queued_at).limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True, of=ti))
"""Queued tasks no worker took (or whose message never went out), and running ones
whose lease expired; SKIP LOCKED lets coordinators take disjoint rows without waiting."""

MARK_RESENT = update(ti).where(*_this_ti).values(queued_at=_now, unsent=False,
                                                 resends=ti.c.resends + 1)
"""The reconciler decided to send the attempt again (its row is locked meanwhile)."""

OVERDUE_TASKS = (
    select(ti.c.run_id, runs.c.dag_id, ti.c.task_id, ti.c.attempt, ti.c.lost_attempts,
           ti.c.max_attempts, attempts.c.celery_id)
    .join(runs, runs.c.id == ti.c.run_id)
    .outerjoin(attempts, (attempts.c.run_id == ti.c.run_id)
               & (attempts.c.task_id == ti.c.task_id) & (attempts.c.attempt == ti.c.attempt))
    .where(runs.c.state == RunState.RUNNING, ti.c.state == TaskState.RUNNING,
           ti.c.deadline < bindparam("b_before"))
    .limit(bindparam("b_limit")))

OVERDUE_RUNS = select(runs.c.id).where(
    runs.c.state == RunState.RUNNING,
    runs.c.deadline < bindparam("b_now", type_=runs.c.deadline.type)).limit(bindparam("b_limit"))

TAKE_LEASE = update(leases).where(
    leases.c.name == bindparam("b_name"),
    (leases.c.holder == bindparam("b_holder")) | (leases.c.expires_at < bindparam("b_wall")),
).values(holder=bindparam("b_holder"), expires_at=bindparam("b_expires"))
LEASE_EXISTS = select(leases.c.name).where(leases.c.name == bindparam("b_name"))
INSERT_LEASE = insert(leases).values(name=bindparam("b_name"), holder=bindparam("b_holder"),
                                     expires_at=bindparam("b_expires"))
DROP_LEASE = delete(leases).where(leases.c.name == bindparam("b_name"),
                                  leases.c.holder == bindparam("b_holder"))

# -- rerun and cancel ----------------------------------------------------------------------

REOPEN_RUN = update(runs).where(runs.c.id == bindparam("b_run"),
                                runs.c.state.in_(FINISHED_RUN)).values(
    state=RunState.RUNNING, finished_at=None)

RESET_TASK = update(ti).where(_run, ti.c.task_id == bindparam("b_task"),
                              ti.c.state.in_(FINISHED_TASK)).values(
    state=bindparam("b_state"), remaining=bindparam("b_remaining"),
    failed_up=bindparam("b_failed_up"), skipped_up=bindparam("b_skipped_up"),
    attempt=ti.c.attempt + 1,
    max_attempts=ti.c.attempt - ti.c.lost_attempts + bindparam("b_budget"),
    result=None, worker=None, lease_expires_at=None, started_at=None, unsent=False,
    error=bindparam("b_error"), finished_at=bindparam("b_finished_at", type_=ti.c.finished_at.type),
    queued_at=bindparam("b_queued_at", type_=ti.c.queued_at.type),
).returning(ti.c.attempt)

REDO_INSTANCES = update(ti).where(
    _run, ti.c.map_parent.in_(bindparam("b_ids", expanding=True))).values(
    state=TaskState.PENDING)

COUNT_BY_STATE = select(ti.c.state, func.count()).where(_run).group_by(ti.c.state)

FAILED_AMONG = select(func.count()).select_from(ti).where(
    _run, _ids, ti.c.state.in_([TaskState.FAILED, TaskState.UPSTREAM_FAILED]))

SET_RUN_COUNTS = update(runs).where(runs.c.id == bindparam("b_run")).values(
    unfinished=bindparam("b_unfinished"), failed_tasks=bindparam("b_failed"))

STOP_RUN = update(runs).where(runs.c.id == bindparam("b_run"), runs.c.state.in_(
    [RunState.RUNNING, RunState.QUEUED])).values(
    state=bindparam("b_state"), finished_at=bindparam("b_now"), unfinished=0,
).returning(runs.c.backfill_id)

CANCEL_ATTEMPTS = update(attempts).where(
    attempts.c.run_id == bindparam("b_run"), attempts.c.outcome == AttemptOutcome.RUNNING,
).values(outcome=AttemptOutcome.FAILED, finished_at=bindparam("b_now"),
         error_type=errors.Cancelled.__name__,
         error_message=bindparam("b_reason"),
         ).returning(attempts.c.task_id, attempts.c.attempt, attempts.c.celery_id)

CANCEL_TASKS = update(ti).where(_run, ti.c.state.in_(UNFINISHED_TASK)).values(
    state=TaskState.CANCELLED, finished_at=bindparam("b_now"), lease_expires_at=None,
    error=bindparam("b_reason")).returning(ti.c.task_id)

# -- reads ---------------------------------------------------------------------------------

APPEND_LOG = insert(log_chunks).from_select(
    ["run_id", "task_id", "attempt", "seq", "at", "data"],
    select(attempts.c.run_id, attempts.c.task_id, attempts.c.attempt,
           bindparam("b_seq", type_=log_chunks.c.seq.type),
           bindparam("b_now", type_=log_chunks.c.at.type),
           bindparam("b_data", type_=log_chunks.c.data.type),
           ).where(*_this_attempt, attempts.c.outcome == AttemptOutcome.RUNNING)
    .with_for_update(read=True)).returning(log_chunks.c.seq)
"""A chunk of a running attempt's log, or nothing once it ended (a worker cut off and
taken over writes no more). FOR SHARE on PostgreSQL: the transaction that ends the
attempt waits for this one, or this one sees it ended; SQLite has one writer anyway.
RETURNING says whether it wrote (psycopg's rowcount of an INSERT ... SELECT is -1)."""

LATEST_ATTEMPT = select(func.max(attempts.c.attempt)).where(
    attempts.c.run_id == bindparam("b_run"), attempts.c.task_id == bindparam("b_task"))
ATTEMPT_OUTCOME = select(attempts.c.outcome).where(*_this_attempt)
LOG_CHUNKS = select(log_chunks.c.seq, log_chunks.c.at, log_chunks.c.data).where(
    *_this_log, log_chunks.c.seq > bindparam("b_after")).order_by(log_chunks.c.seq).limit(
    bindparam("b_limit"))
TASK_EXISTS = select(ti.c.task_id).where(_run, ti.c.task_id == bindparam("b_task"))

RUN_STATE = select(runs.c.state).where(runs.c.id == bindparam("b_run"))
RUN_ROW = select(runs).where(runs.c.id == bindparam("b_run"))
TASK_ROWS = select(ti).where(_run)
TASK_ROWS_LEAN = select(*[c for c in ti.c if c.name not in ("result", "map_item")]).where(_run)
ATTEMPT_ROWS = select(attempts).where(attempts.c.run_id == bindparam("b_run")).order_by(
    attempts.c.task_id, attempts.c.attempt)
STATE_AND_RESULT = select(ti.c.state, ti.c.result).where(_run, ti.c.task_id == bindparam("b_task"))
TOP_LEVEL_STATES = select(ti.c.task_id, ti.c.state).where(_run, ti.c.map_parent.is_(None))
RUN_EXISTS = select(runs.c.id).where(runs.c.id == bindparam("b_run"))
ATTEMPTS_OF = select(ti.c.task_id, ti.c.attempt).where(_run, _ids)
RUNS_WITH_PREFIX = select(runs.c.id).where(
    runs.c.id.startswith(bindparam("b_prefix"))).order_by(runs.c.id).limit(
    bindparam("b_limit"))
ROW_COUNTS = {t.name: select(func.count()).select_from(t)
              for t in (runs, task_instances, attempts, dag_versions, backfills, events,
                        pools, notifications, deadlines)}
