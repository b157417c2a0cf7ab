"""Writes that concern a run as a whole: submit, rerun, cancel, and unsent messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator import errors
from orchestrator.model import plan, sealed
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.rerun import Reset
from orchestrator.model.states import FINISHED_TASK, AttemptOutcome, RunState, TaskState
from orchestrator.store import admission, advance, backfills, outbox, run_slots
from orchestrator.store import statements as sql
from orchestrator.store.results import AttemptEnd, Change, NewRun, RunStart
from orchestrator.store.tables import dag_versions


def put_version(conn: Connection, dag: CompiledDag, now: dt.datetime) -> None:
    """Store the DAG version once; a concurrent submitter of the same one is harmless."""
    if conn.execute(sql.VERSION_EXISTS, {"b_version": dag.version}).first() is not None:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(dag_versions).values(
        version=dag.version, dag_id=dag.id, spec=dag.data, source=dag.spec.source,
        created_at=now).on_conflict_do_nothing(index_elements=["version"]))


def by_key(conn: Connection, dag_id: str, key: str,
           params: Mapping[str, Any]) -> NewRun | None:
    """The run this idempotency key already made, if any; a key reused with other params
    is an error naming that run."""
    row = conn.execute(sql.RUN_BY_KEY, {"b_dag": dag_id, "b_key": key}).first()
    if row is None:
        return None
    # Sealed secret params compare by digest: each seal of one value is another token.
    if sealed.comparable(row.params) != sealed.comparable(params):
        raise errors.Conflict(f"idempotency key {key!r} was used by run {row.id} of DAG "
                              f"{dag_id!r} with other params: {sealed.shown(row.params)!r}")
    return NewRun(row.id, created=False)


def create(conn: Connection, dag: CompiledDag, *, run_id: str, params: Mapping[str, Any],
           idempotency_key: str | None, version_stored: bool, now: dt.datetime,
           start: RunStart | None = None, change: Change | None = None,
           ) -> list[tuple[str, int]] | None:
    """Write the run and one row per task; the initial tasks start queued (pending, in
    a run created queued for a run slot). Those that need a pool slot wait for it: then
    the initial tasks queued are returned (None: all of them), and waiters of other runs
    the fill admitted go to ``change.elsewhere``.
    ``version_stored``: the caller knows the DAG version is in the database already."""
    start = start or RunStart()
    p = dag.plan
    first = set() if start.queued else set(p.initial)
    rows = [{"run_id": run_id, "task_id": node,
             "state": TaskState.QUEUED if node in first else TaskState.PENDING,
             "attempt": 1, "max_attempts": dag.spec.task(node).max_attempts,
             "lost_attempts": 0, "remaining": len(ups), "failed_up": 0, "skipped_up": 0,
             "queued_at": now if node in first else None}
            for node, ups in p.upstream.items()]
    if admission.has_slot_columns(p):  # else the columns' defaults are what they hold
        for row, node in zip(rows, p.upstream, strict=True):
            row.update(admission.slot_columns(p, node))
    timeout = dag.spec.timeout
    if not version_stored:
        put_version(conn, dag, now)
    conn.execute(sql.INSERT_RUN, {
        "id": run_id, "dag_id": dag.id,
        "state": RunState.QUEUED if start.queued else RunState.RUNNING, "params": dict(params),
        "idempotency_key": idempotency_key, "total_tasks": len(rows),
        "unfinished": len(rows), "failed_tasks": 0, "created_at": now,
        "deadline": now + dt.timedelta(seconds=timeout) if timeout else None,
        "dag_version": dag.version, "trigger": start.trigger,
        "logical_time": start.logical_time, "interval_start": start.interval_start,
        "interval_end": start.interval_end, "payload": start.payload,
        "backfill_id": start.backfill_id})
    conn.execute(sql.INSERT_TASKS, rows)
    if p.alerts is not None and not start.queued:  # a queued run's, when it starts
        outbox.open_deadline(conn, dag, run_id, now, start.logical_time)
    if not first or not admission.needed(conn, p):
        return None
    held = Change(run_id, queued=[(t, 1) for t in p.initial])
    admission.settle(conn, run_id, p, held, now)
    if change is not None:
        change.elsewhere += held.elsewhere
    return held.queued



def mark_unsent(conn: Connection, run_id: str, task_ids: list[str]) -> None:
    for chunk in advance.chunks(task_ids):
        conn.execute(sql.MARK_UNSENT, {"b_run": run_id, "b_ids": chunk})


def rerun(conn: Connection, run_id: str, reset: Mapping[str, Reset],
          budgets: Mapping[str, int], leaves: Collection[str],
          redo_instances: Collection[str], now: dt.datetime, p: plan.Plan | None = None,
          ) -> tuple[Change, dict[str, int]]:
    """Reset finished tasks of a finished run to ``(state, remaining, failed_up,
    skipped_up)`` as new attempts. The instances of the mapped tasks in
    ``redo_instances`` are set back to pending, so the mapped task's next expansion
    runs them all (otherwise it keeps those that succeeded).

    The attempt number of every reset task goes up by one, so a message of the old
    attempt still in flight is rejected by the claim. Results of tasks not reset stay.
    Raises :class:`Conflict` (and changes nothing) if the run is not finished."""
    if conn.execute(sql.REOPEN_RUN, {"b_run": run_id}).rowcount != 1:
        state = conn.execute(sql.RUN_STATE, {"b_run": run_id}).scalar()
        if state is None:
            raise errors.UnknownRun(f"no run {run_id!r}")
        raise errors.Conflict(f"run {run_id!r} is still running: wait for it or cancel it "
                              "before a rerun")
    change = Change(run_id)
    attempts: dict[str, int] = {}
    for task_id, (state, remaining, failed_up, skipped_up) in reset.items():
        settled = state in (TaskState.UPSTREAM_FAILED, TaskState.SKIPPED)
        new_attempt = conn.execute(sql.RESET_TASK, {
            "b_run": run_id, "b_task": task_id, "b_state": state, "b_remaining": remaining,
            "b_failed_up": failed_up, "b_skipped_up": skipped_up,
            "b_budget": budgets[task_id],
            "b_error": "settled by upstream tasks that were not rerun" if settled else None,
            "b_finished_at": now if settled else None,
            "b_queued_at": now if state == TaskState.QUEUED else None}).scalar()
        if new_attempt is None:
            raise errors.Conflict(f"task {task_id!r} of run {run_id!r} is not finished")
        attempts[task_id] = new_attempt
        if state == TaskState.QUEUED:
            change.queued.append((task_id, new_attempt))
        elif settled:
            change.finished.append((task_id, state))
    for chunk in advance.chunks(list(redo_instances)):
        conn.execute(sql.REDO_INSTANCES, {"b_run": run_id, "b_ids": chunk})
    counts: dict[str, int] = dict(conn.execute(sql.COUNT_BY_STATE, {"b_run": run_id}).all())
    unfinished = sum(n for st, n in counts.items() if st not in FINISHED_TASK)
    failed = sum(conn.execute(sql.FAILED_AMONG, {"b_run": run_id, "b_ids": chunk}).scalar_one()
                 for chunk in advance.chunks(list(leaves)))
    conn.execute(sql.SET_RUN_COUNTS, {"b_run": run_id, "b_unfinished": unfinished,
                                      "b_failed": failed})
    if unfinished == 0:
        advance.count_down(conn, run_id, finished=0, failed=0, now=now, change=change)
    elif p is not None:
        admission.settle(conn, run_id, p, change, now)
    return change, attempts


def stop(conn: Connection, run_id: str, *, state: RunState, reason: str,
         now: dt.datetime, p: plan.Plan | None = None) -> Change:
    """End a running run, or one queued for a run slot (cancelled, or failed when it timed
    out): no task of it starts any more; the attempts running now are to be terminated.
    A worker that finishes one later finds its task cancelled and records nothing. In a
    DAG with ``max_active_runs`` (``p``), the slot goes to the next queued run."""
    stopped = conn.execute(sql.STOP_RUN, {"b_run": run_id, "b_state": state,
                                          "b_now": now}).first()
    if stopped is None:
        current = conn.execute(sql.RUN_STATE, {"b_run": run_id}).scalar()
        if current is None:
            raise errors.UnknownRun(f"no run {run_id!r}")
        raise errors.Conflict(f"run {run_id!r} is already {current}")
    change = Change(run_id, run_state=state)
    for r in conn.execute(sql.CANCEL_ATTEMPTS, {"b_run": run_id, "b_now": now,
                                                "b_reason": reason}).all():
        change.ended.append(AttemptEnd(r.task_id, r.attempt, AttemptOutcome.FAILED,
                                       errors.Cancelled.__name__))
        if r.celery_id:
            change.terminate.append(r.celery_id)
    change.finished += [(task_id, TaskState.CANCELLED) for task_id in conn.execute(
        sql.CANCEL_TASKS, {"b_run": run_id, "b_now": now, "b_reason": reason}).scalars()]
    if p is not None:
        admission.settle(conn, run_id, p, change, now, freed=p.order)
        if p.max_active_runs is not None:
            run_slots.start_next(conn, p.dag_id, now, change, p.max_active_runs)
    if stopped.backfill_id is not None:
        backfills.advance(conn, stopped.backfill_id, now, change)
    return change
