"""Reads for the client, CLI and API: runs with their tasks and attempts, results."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, select

from orchestrator import errors
from orchestrator.model import records
from orchestrator.model.states import RunState, TaskState
from orchestrator.store import statements as sql
from orchestrator.store.tables import runs

_PREFIX = re.compile(r"[0-9a-f]{1,32}")


def run_state(conn: Connection, run_id: str) -> RunState:
    state = conn.execute(sql.RUN_STATE, {"b_run": run_id}).scalar()
    if state is None:
        raise errors.UnknownRun(f"no run {run_id!r}")
    return RunState(state)


def progress(conn: Connection, run_id: str) -> dict[TaskState, int]:
    return {TaskState(s): n for s, n in conn.execute(sql.COUNT_BY_STATE, {"b_run": run_id})}


def get_run(conn: Connection, run_id: str, *, with_results: bool) -> records.Run:
    key = {"b_run": run_id}
    row = conn.execute(sql.RUN_ROW, key).mappings().first()
    if row is None:
        raise errors.UnknownRun(f"no run {run_id!r}")
    tis = conn.execute(sql.TASK_ROWS if with_results else sql.TASK_ROWS_LEAN,
                       key).mappings().all()
    by_task: dict[str, list[records.Attempt]] = {}
    for a in conn.execute(sql.ATTEMPT_ROWS, key).mappings():
        by_task.setdefault(a["task_id"], []).append(records.Attempt.model_validate(dict(a)))
    tasks = {t["task_id"]: records.TaskInstance.model_validate(
        {**t, "attempts": by_task.get(t["task_id"], [])}) for t in tis}
    return records.Run.model_validate({**row, "tasks": tasks})


def list_runs(conn: Connection, *, dag_id: str | None, state: RunState | None,
              limit: int) -> list[records.Run]:
    q = select(runs).order_by(runs.c.created_at.desc()).limit(limit)
    if dag_id:
        q = q.where(runs.c.dag_id == dag_id)
    if state:
        q = q.where(runs.c.state == state)
    return [records.Run.model_validate(dict(r)) for r in conn.execute(q).mappings()]


def result(conn: Connection, run_id: str, task_id: str) -> tuple[TaskState, Any]:
    row = conn.execute(sql.STATE_AND_RESULT, {"b_run": run_id, "b_task": task_id}).first()
    if row is not None:
        return TaskState(row.state), row.result
    if conn.execute(sql.RUN_EXISTS, {"b_run": run_id}).first() is None:
        raise errors.UnknownRun(f"no run {run_id!r}")
    raise errors.UnknownTask(f"run {run_id!r} has no task {task_id!r}")


def resolve_run_id(conn: Connection, prefix: str) -> str:
    """The one run whose id starts with ``prefix``; an ambiguous prefix lists the matches."""
    if not _PREFIX.fullmatch(prefix):
        raise errors.UnknownRun(f"no run {prefix!r}: run ids are 32 hex digits (a unique "
                                "prefix of one will do)")
    found = list(conn.execute(sql.RUNS_WITH_PREFIX, {"b_prefix": prefix, "b_limit": 6}).scalars())
    if not found:
        raise errors.UnknownRun(f"no run {prefix!r}")
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise errors.AmbiguousRun(f"run id prefix {prefix!r} matches several runs: {shown}")
    return str(found[0])
