"""Backfills in the state database: one row per backfill, its runs created lazily.

Accepting a backfill writes its row and its first ``max_active`` runs; each transaction
that ends one of its runs (or cancels it) creates the next, in logical-time order, so a
year of hourly runs is one row and a cursor until they are due, and no loop waits
between a run's end and the next one's start. The row is locked while it advances, so
two of its runs ending at once never create the same logical time twice (and the
(dag_id, logical_time) unique index would refuse it anyway)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import backfill, params, records, schedule
from orchestrator.model import rerun as rerun_
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.store import sql_backfills as sql
from orchestrator.store import statements, versions
from orchestrator.store.results import Change, RunStart


def create(conn: Connection, dag: CompiledDag, win: backfill.Window, *, start: dt.datetime,
           end: dt.datetime, reprocess: str, max_active: int, now: dt.datetime,
           change: Change) -> str:
    """Write the backfill and start its first runs (their ids to ``change.started_runs``)."""
    bf_id = uuid.uuid4().hex
    conn.execute(sql.INSERT, {
        "id": bf_id, "dag_id": dag.id, "version": dag.version, "start_at": start,
        "end_at": end, "reprocess": reprocess, "max_active": max_active,
        "cursor": win.first, "total": win.total, "created": 0,
        "state": "running" if win.total else "success", "created_at": now,
        "finished_at": None if win.total else now})
    advance(conn, bf_id, now, change)
    return bf_id


def advance(conn: Connection, bf_id: str, now: dt.datetime, change: Change) -> None:
    """Start the backfill's next logical times while fewer than ``max_active`` of its runs
    are going; end it once every one is handled and its runs have ended."""
    row = conn.execute(sql.LOCK, {"b_id": bf_id}).first()
    if row is None:  # ended or cancelled
        return
    # ``now`` was read when the transaction began, maybe before another one that held
    # this lock committed the previous logical time: its runs must not look older
    now = max(now, dt.datetime.now(dt.UTC))
    dag = versions.compiled(conn, row.version)
    if dag is None:
        raise errors.UnknownDag(f"the version {row.version} backfill {bf_id} runs is gone")
    s = backfill.timed(dag.spec.schedule, dag.spec.timezone, dag.id)
    active = conn.execute(sql.ACTIVE, {"b_id": bf_id}).scalar_one()
    cursor, created = row.cursor, row.created
    while cursor is not None and active < row.max_active:
        if _handle(conn, dag, s, cursor, bf_id, row.reprocess, now, change):
            active += 1
        created += 1  # handled: started, rerun, or left as it was
        cursor = backfill.following(s, cursor, row.end_at)
    done = cursor is None and active == 0
    conn.execute(sql.MOVE, {"b_id": bf_id, "b_cursor": cursor, "b_created": created,
                            "b_state": "success" if done else "running",
                            "b_finished": now if done else None})


def _handle(conn: Connection, dag: CompiledDag, s: schedule.Cron | schedule.Every,
            tick: dt.datetime, bf_id: str, reprocess: str, now: dt.datetime,
            change: Change) -> bool:
    """Start the run of logical time ``tick`` (or rerun the one it has); False: skipped."""
    from orchestrator.store import runs  # runs end through advance, which comes here

    existing = conn.execute(sql.RUN_AT, {"b_dag": dag.id, "b_time": tick}).first()
    if existing is None:
        start, end = schedule.interval(s, tick)
        run_id = uuid.uuid4().hex
        runs.create(conn, dag, run_id=run_id, params=params.validate(dag.spec, {}),
                    idempotency_key=None,
                    version_stored=True, now=now, change=change,
                    start=RunStart(trigger="backfill", logical_time=tick,
                                   interval_start=start, interval_end=end, backfill_id=bf_id))
        change.started_runs.append(run_id)
        return True
    if not backfill.reruns(reprocess, RunState(existing.state)):
        return False
    old = versions.compiled(conn, existing.dag_version) if existing.dag_version else None
    if old is None:
        return False  # a run older than stored versions cannot be continued
    state = {r.task_id: r.state for r in conn.execute(statements.TOP_LEVEL_STATES,
                                                      {"b_run": existing.id})}
    p = old.plan
    chosen = set(p.order) if reprocess == "all" else rerun_.targets(p, state, None)
    if not chosen or set(state) != set(p.order):
        return False
    reset = rerun_.plan_reset(p, state, chosen)
    redo = [t for t in reset if t in p.map_over] if reprocess == "all" else []
    rerun, _ = runs.rerun(conn, existing.id, reset,
                          {t: old.spec.task(t).max_attempts for t in reset},
                          [t for t in p.order if not p.downstream[t]], redo, now, p)
    conn.execute(sql.ADOPT, {"b_run": existing.id, "b_id": bf_id})
    change.started_runs.append(existing.id)
    change.elsewhere += rerun.elsewhere
    return True


def cancel(conn: Connection, bf_id: str, now: dt.datetime) -> list[str]:
    """Stop creating runs; returns its runs still going, for the caller to cancel."""
    if conn.execute(sql.CANCEL, {"b_id": bf_id, "b_now": now}).rowcount != 1:
        found = conn.execute(sql.ROW, {"b_id": bf_id}).first()
        if found is None:
            raise errors.UnknownBackfill(f"no backfill {bf_id!r}")
        raise errors.Conflict(f"backfill {bf_id!r} is already {found.state}")
    return list(conn.execute(sql.ACTIVE_RUNS, {"b_id": bf_id}).scalars())


def listing(conn: Connection, dag_id: str | None, limit: int) -> list[records.Backfill]:
    q = sql.LIST if dag_id is None else sql.LIST_OF
    rows = conn.execute(q, {"b_dag": dag_id, "b_limit": limit}).all()
    return _records(conn, rows)


def get(conn: Connection, bf_id: str) -> records.Backfill:
    row = conn.execute(sql.ROW, {"b_id": bf_id}).first()
    if row is None:
        raise errors.UnknownBackfill(f"no backfill {bf_id!r}")
    return _records(conn, [row])[0]


def _records(conn: Connection, rows: Sequence[Any]) -> list[records.Backfill]:
    counts: dict[str, dict[str, int]] = {}
    if rows:
        for c in conn.execute(sql.RUN_COUNTS, {"b_ids": [r.id for r in rows]}):
            counts.setdefault(c.backfill_id, {})[c.state] = int(c.n)
    return [records.Backfill(
        id=r.id, dag_id=r.dag_id, start=r.start_at, end=r.end_at, reprocess=r.reprocess,
        max_active=r.max_active, total=r.total, handled=r.created, cursor=r.cursor,
        state=r.state, created_at=r.created_at, finished_at=r.finished_at,
        runs=counts.get(r.id, {})) for r in rows]
