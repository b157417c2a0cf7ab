"""Finished runs written in bulk, and scratch PostgreSQL databases: for benchmarks and
tests only, never for the orchestrator itself.

Reading 100,000 runs back through the API needs 100,000 runs in the database; submitting
them one by one would take longer than the measurement and measure the wrong thing. Here
rows go in batches through ``executemany``, as finished runs look after a worker ran
them (a run row, one task row per node, one attempt per task that ran), all of one
stored DAG version so the run view can draw them. DAGs without mapped tasks only: a
mapped task's instances are not written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import runs as runs_
from orchestrator.store import statements as sql
from orchestrator.store.engine import make_engine
from orchestrator.store.facade import Store
from orchestrator.store.tables import attempts

INSERT_ATTEMPTS = sa.insert(attempts)
ROWS_PER_BATCH = 5000
"""Task rows per transaction: big enough that the statement overhead vanishes, small
enough that a batch's parameters stay a few megabytes."""


@dataclasses.dataclass(frozen=True)
class Spread:
    """Run ``i`` is created at ``start + offset + i * every``: DAGs seeded with their own
    ``offset`` interleave in time, as runs of DAGs that run side by side do."""

    start: dt.datetime
    every: dt.timedelta = dt.timedelta(seconds=1)
    offset: dt.timedelta = dt.timedelta(0)

    def at(self, i: int) -> dt.datetime:
        return self.start + self.offset + i * self.every


def finished_runs(store: Store, dag: CompiledDag, count: int, spread: Spread, *,
                  failed_every: int = 0, with_attempts: bool = True,
                  worker: str = "seed@localhost") -> int:
    """Write ``count`` finished runs of ``dag``; every ``failed_every``-th one failed (its
    last task failed, the tasks after it in plan order upstream_failed). Returns the
    number of task rows written."""
    order = list(dag.plan.upstream)
    per_run = max(1, len(order))
    runs_per_batch = max(1, ROWS_PER_BATCH // per_run)
    written = 0
    with store._tx() as conn:  # the store's own transaction: SQLite's writer lock
        runs_.put_version(conn, dag, spread.start)
    for first in range(0, count, runs_per_batch):
        run_rows: list[dict[str, Any]] = []
        task_rows: list[dict[str, Any]] = []
        attempt_rows: list[dict[str, Any]] = []
        for i in range(first, min(count, first + runs_per_batch)):
            failed = failed_every > 0 and i % failed_every == failed_every - 1
            _one_run(dag, order, i, spread.at(i), failed, worker, run_rows, task_rows,
                     attempt_rows if with_attempts else None)
        with store._tx() as conn:
            conn.execute(sql.INSERT_RUN, run_rows)
            conn.execute(sql.INSERT_TASKS, task_rows)
            if attempt_rows:
                conn.execute(INSERT_ATTEMPTS, attempt_rows)
        written += len(task_rows)
    return written


def _one_run(dag: CompiledDag, order: list[str], i: int, created: dt.datetime, failed: bool,
             worker: str, run_rows: list[dict[str, Any]], task_rows: list[dict[str, Any]],
             attempt_rows: list[dict[str, Any]] | None) -> None:
    run_id = uuid.uuid4().hex
    broken = len(order) // 2 if failed else len(order)  # the task that failed, if any
    t = created
    for k, node in enumerate(order):
        state = (TaskState.SUCCESS if k < broken else
                 TaskState.FAILED if k == broken else TaskState.UPSTREAM_FAILED)
        ran = state != TaskState.UPSTREAM_FAILED
        start, end = t, t + dt.timedelta(milliseconds=3)
        if ran:
            t = end
        task_rows.append({
            "run_id": run_id, "task_id": node, "state": state, "attempt": 1,
            "max_attempts": dag.spec.task(node).max_attempts, "lost_attempts": 0,
            "remaining": 0, "failed_up": int(k > broken), "skipped_up": 0,
            "result": None,
            "error": "ValueError: seeded failure" if state == TaskState.FAILED else None,
            "worker": worker if ran else None, "queued_at": start if ran else None,
            "started_at": start if ran else None, "finished_at": end})
        if ran and attempt_rows is not None:
            ok = state == TaskState.SUCCESS
            attempt_rows.append({
                "run_id": run_id, "task_id": node, "attempt": 1,
                "outcome": AttemptOutcome.SUCCESS if ok else AttemptOutcome.FAILED,
                "worker": worker, "pid": 1, "celery_id": uuid.uuid4().hex,
                "started_at": start, "finished_at": end, "queued_at": start,
                "error_type": None if ok else "ValueError",
                "error_message": None if ok else "seeded failure",
                "traceback": None, "dag_version": dag.version})
    run_rows.append({
        "id": run_id, "dag_id": dag.id,
        "state": RunState.FAILED if failed else RunState.SUCCESS, "params": {},
        "idempotency_key": None, "total_tasks": len(order), "unfinished": 0,
        "failed_tasks": 1 if failed else 0, "created_at": created, "finished_at": t,
        "deadline": None, "dag_version": dag.version})


@contextlib.contextmanager
def scratch_postgres(admin_url: str, prefix: str = "orch_scratch") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server ``admin_url`` names, dropped (its
    connections ended) when the block ends. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def analyze(store: Store) -> None:
    """Gather PostgreSQL's planner statistics, as autovacuum does within a minute or so of
    a bulk load: a real database holding these runs has them, and without them the
    planner guesses (measured: a grid page's reads took 50 ms instead of 16). SQLite's
    are left alone, as the orchestrator never gathers them there."""
    if store.engine.dialect.name != "postgresql":
        return
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
