"""Run slots: a DAG with ``max_active_runs`` runs that many at once; the others wait in
state queued, and the transaction that ends a run starts the oldest waiting one.

Only DAGs with the limit get here (the callers gate on the plan), so a DAG without it
pays no statement. The DAG's row is locked first (PostgreSQL), so two runs ending at once
decide in turn and never start the same queued run, nor one too many."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from orchestrator.store import admission, outbox, versions
from orchestrator.store import sql_schedules as sql
from orchestrator.store.results import Change


def start_next(conn: Connection, dag_id: str, now: dt.datetime, change: Change,
               limit: int | None = None) -> None:
    """Start queued runs of ``dag_id`` while fewer than its limit run: the dags row's
    ``max_active_runs`` (the DAG as registered now), else ``limit`` (the plan's). Each
    started run's initial tasks become queued; its id goes to ``change.started_runs``."""
    row = conn.execute(sql.SLOT_LIMIT, {"b_dag": dag_id}).first()
    cap = row.max_active_runs if row is not None and row.max_active_runs is not None else limit
    if cap is None:
        return
    for _ in range(cap + 1):
        if conn.execute(sql.RUNNING_RUNS, {"b_dag": dag_id}).scalar_one() >= cap:
            return
        nxt = conn.execute(sql.OLDEST_QUEUED, {"b_dag": dag_id}).first()
        if nxt is None or nxt.dag_version is None:
            return
        dag = versions.compiled(conn, nxt.dag_version)
        if dag is None:
            return
        p, timeout = dag.plan, dag.spec.timeout
        deadline = now + dt.timedelta(seconds=timeout) if timeout else None
        if conn.execute(sql.START_RUN, {"b_run": nxt.id, "b_deadline": deadline}).rowcount != 1:
            continue  # cancelled meanwhile: look again
        conn.execute(sql.QUEUE_INITIAL, {"b_run": nxt.id, "b_ids": list(p.initial),
                                         "b_now": now})
        if p.alerts is not None:
            outbox.open_deadline(conn, dag, nxt.id, now, nxt.logical_time)
        change.started_runs.append(nxt.id)
        # its tasks that need a pool slot wait for one (the sender reads what is queued)
        started = Change(nxt.id, queued=[(t, 1) for t in p.initial])
        admission.settle(conn, nxt.id, p, started, now)
        change.elsewhere += started.elsewhere
