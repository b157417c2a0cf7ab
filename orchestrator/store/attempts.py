"""The worker's hot path: claim an attempt, renew its lease, record how it ended.

Each function runs inside one transaction the facade opened. The transaction that
records an outcome also decides, with compare-and-set UPDATEs, what that outcome made
ready (:mod:`.advance`, :mod:`.mapping`), and reports it in a :class:`Change`.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import limits, plan, spec
from orchestrator.model.states import AttemptOutcome, TaskState
from orchestrator.store import admission, advance, logs, mapping, triggers
from orchestrator.store import statements as sql
from orchestrator.store.results import AttemptEnd, Busy, Change, Claim, GiveUp, NotDue


def fit(text: str, width: int | None = None) -> str:
    """Text the orchestrator writes (worker names, errors, tracebacks) as both databases
    store it: a NUL shown as ``\\x00`` (PostgreSQL refuses NUL in text), cut to its
    column. User values are checked, and refused, before they get here."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text if width is None else text[:width]


def claim(conn: Connection, run_id: str, task_id: str, attempt: int, *, worker: str,
          pid: int, lease_seconds: float, data_from: Sequence[str], max_lost: int,
          celery_id: str | None, timeout: float | None, version: str | None,
          now: dt.datetime) -> Claim | GiveUp | Busy | NotDue | None:
    """Move a queued attempt to running; None if it is not ours to run.

    A message for an attempt that is running under an expired lease means its worker
    was lost: the next attempt takes over, up to ``max_lost`` times. One for an attempt
    still waiting out its retry backoff starts nothing (NotDue)."""
    wall = time.time()
    key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
    worker = fit(worker, limits.WORKER_COLUMN)
    token = uuid.uuid4().hex
    owner = {"b_now": now, "b_worker": worker, "b_lease": wall + lease_seconds,
             "b_token": token, "b_deadline": wall + timeout if timeout is not None else None}
    took_over = None
    row = conn.execute(sql.CLAIM, {**key, **owner}).first()
    if row is not None:
        lost, max_attempts, item = row.lost_attempts, row.max_attempts, row.map_item
    else:
        taken = _take_over(conn, key, owner, wall=wall, max_lost=max_lost, now=now)
        if not isinstance(taken, tuple):
            return taken
        lost, max_attempts, took_over, item = taken
        attempt = took_over + 1
        key["b_attempt"] = attempt
    conn.execute(sql.START_ATTEMPT, {**key, "b_worker": worker, "b_pid": pid,
                                     "b_celery_id": celery_id, "b_now": now,
                                     "b_version": version, "b_first_try": took_over is None})
    upstream: dict[str, Any] = {}
    if data_from:
        upstream = dict(conn.execute(sql.RESULTS_OF, {"b_run": run_id,
                                                      "b_ids": list(data_from)}).all())
    return Claim(attempt, lost, max_attempts, upstream, item, token, took_over)


def _take_over(conn: Connection, key: dict[str, Any], owner: dict[str, Any], *, wall: float,
               max_lost: int, now: dt.datetime,
               ) -> tuple[int, int, int, Any] | GiveUp | Busy | NotDue | None:
    """The attempt is not claimable: is it not due yet, or is the task running under a
    lease nobody renews?

    The message may name an older attempt than the row (a message redelivered after an
    earlier takeover): starting a *new* attempt from it is safe, because the takeover is
    a compare-and-set on the row's current attempt and results are fenced by it."""
    row = conn.execute(sql.RUNNING_ROW, key).first()
    if (row is not None and row.state == TaskState.UP_FOR_RETRY
            and row.attempt == key["b_attempt"] and row.queued_at is not None
            and row.queued_at > now):
        return NotDue(row.queued_at, row.attempt)
    if row is None or row.state != TaskState.RUNNING or row.attempt < key["b_attempt"]:
        return None
    current = row.attempt
    if (row.lease_expires_at or 0) >= wall:
        return Busy(row.lease_expires_at, current)
    if row.deadline is not None and row.deadline < wall:
        return GiveUp(current, row.lost_attempts, row.max_attempts, errors.TaskTimeout.__name__,
                      "exceeded its timeout, and its worker was lost")
    if row.lost_attempts + 1 >= max_lost:
        return GiveUp(current, row.lost_attempts, error_type=errors.WorkerLost.__name__,
                      message=f"the worker running this task was lost "
                              f"{row.lost_attempts + 1} times")
    took = conn.execute(sql.TAKE_OVER, {**key, **owner, "b_attempt": current, "b_wall": wall})
    if took.rowcount != 1:
        return None
    conn.execute(sql.LOSE_ATTEMPT, {**key, "b_attempt": current, "b_now": owner["b_now"]})
    logs.close_lost(conn, key["b_run"], key["b_task"], current, owner["b_now"])
    return row.lost_attempts + 1, row.max_attempts, current, row.map_item


def renew_lease(conn: Connection, run_id: str, task_id: str, attempt: int, token: str | None,
                lease_seconds: float) -> bool:
    res = conn.execute(sql.RENEW_LEASE, {"b_run": run_id, "b_task": task_id,
                                         "b_attempt": attempt, "b_token": token,
                                         "b_lease": time.time() + lease_seconds})
    return res.rowcount == 1


def succeed(conn: Connection, run_id: str, task_id: str, attempt: int, result: Any,
            p: plan.Plan, chosen: Collection[str] | None, token: str | None,
            now: dt.datetime, resolve: triggers.Resolve | None = None) -> Change:
    """Record success and decide, in the same transaction, which successors are ready.
    A task with outlets stores an asset event per asset, and its consumers' runs start
    in this transaction (``resolve`` compiles their stored versions).

    ``chosen``: for a branching task, the children to follow; the others are skipped.
    ``token``: the claim's; a result from a claim that no longer holds is refused."""
    key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
    if conn.execute(sql.SUCCEED, {**key, "b_result": result, "b_now": now,
                                  "b_token": token}).rowcount != 1:
        return Change.nothing(run_id)
    conn.execute(sql.END_ATTEMPT, {**key, "b_outcome": AttemptOutcome.SUCCESS, "b_now": now})
    change = Change(run_id, ended=[AttemptEnd(task_id, attempt, AttemptOutcome.SUCCESS)],
                    finished=[(task_id, TaskState.SUCCESS)])
    _hand_on(conn, run_id, task_id, TaskState.SUCCESS, chosen, p, now, change)
    if p.outlets and task_id in p.outlets and resolve is not None:
        triggers.emit(conn, "asset", p.outlets[task_id], None, resolve=resolve, now=now,
                      change=change, run_id=run_id, task_id=task_id)
    admission.settle(conn, run_id, p, change, now, freed=[task_id])
    return change


def fail(conn: Connection, run_id: str, task_id: str, attempt: int, *, error_type: str,
         message: str, traceback: str | None, retry_in: float | None, p: plan.Plan,
         token: str | None, now: dt.datetime, worker_lost: bool = False) -> Change:
    """Record a failed attempt: schedule the next one ``retry_in`` seconds from now, or
    (``retry_in`` None) fail the task and let its downstream tasks' rules decide.
    ``worker_lost``: its worker is gone, so its log ends with the lost-worker marker."""
    key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
    error_type, message = fit(error_type, limits.ERROR_TYPE_COLUMN), fit(message)
    traceback = None if traceback is None else fit(traceback)
    values = {**key, "b_error": f"{error_type}: {message}", "b_token": token, "b_now": now}
    if retry_in is not None:
        values["b_due"] = now + dt.timedelta(seconds=retry_in)
    if conn.execute(sql.FAIL_FOR_RETRY if retry_in is not None else sql.FAIL,
                    values).rowcount != 1:
        return Change.nothing(run_id)
    conn.execute(sql.END_ATTEMPT_FAILED, {**key, "b_now": now, "b_error_type": error_type,
                                          "b_message": message, "b_traceback": traceback})
    if worker_lost:
        logs.close_lost(conn, run_id, task_id, attempt, now)
    change = Change(run_id, ended=[AttemptEnd(task_id, attempt, AttemptOutcome.FAILED,
                                              error_type)])
    if retry_in is not None:
        change.retry = (task_id, attempt + 1, retry_in)
        return change
    change.finished.append((task_id, TaskState.FAILED))
    _hand_on(conn, run_id, task_id, TaskState.FAILED, None, p, now, change)
    admission.settle(conn, run_id, p, change, now, freed=[task_id])
    return change


def _hand_on(conn: Connection, run_id: str, task_id: str, outcome: TaskState,
             chosen: Collection[str] | None, p: plan.Plan, now: dt.datetime,
             change: Change) -> None:
    """Hand a finished task's outcome to its children (or a mapped instance's to its
    mapped task) and count it down in the run."""
    parent, index = spec.split_task_id(task_id)
    if index is None:
        finished, failed = advance.propagate(conn, run_id, p, [(task_id, outcome, chosen)],
                                             now, change)
    else:
        finished, failed = mapping.instance_done(
            conn, run_id, parent, failed=outcome == TaskState.FAILED, p=p, now=now,
            change=change)
    advance.count_down(conn, run_id, finished=1 + finished, failed=failed, now=now,
                       change=change, p=p)


def expand(conn: Connection, run_id: str, task_id: str, attempt: int, *, source: str,
           max_active: int | None, max_attempts: int, max_items: int, worker: str,
           p: plan.Plan, now: dt.datetime) -> Change:
    """Start mapped task ``task_id`` over the list ``source`` returned: write its
    instances and report the ones to send now (see :mod:`.mapping`). A list that cannot
    be mapped fails the task; an empty one succeeds it with ``[]``."""
    key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
    worker = fit(worker, limits.WORKER_COLUMN)
    if conn.execute(sql.START_MAPPED, {**key, "b_now": now, "b_worker": worker}).rowcount != 1:
        return Change.nothing(run_id)
    items = conn.execute(sql.RESULT_OF, {"b_run": run_id, "b_task": source}).scalar()
    error = mapping.problem(items, source, max_items)
    change = Change(run_id)
    if error is None and isinstance(items, list):
        change.queued += mapping.lay_out(conn, run_id, task_id, items, max_active=max_active,
                                         max_attempts=max_attempts, now=now,
                                         columns=admission.slot_columns(p, f"{task_id}[0]"))
    if error is not None or not change.queued:
        finished, failed = mapping.end(
            conn, run_id, task_id, p=p, now=now, change=change,
            error=error and f"{errors.MapError.__name__}: {error}")
        advance.count_down(conn, run_id, finished=finished, failed=failed, now=now,
                           change=change, p=p)
    admission.settle(conn, run_id, p, change, now)
    return change
