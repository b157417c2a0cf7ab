"""Mapped tasks in the state database.

A mapped task keeps its own row, which stands for all its instances, plus one row per
item (``name[i]``, its ``map_item`` stored with it so a message never carries it). The
row is expanded by the message that starts it, in one transaction: instance rows are
written and the first ``max_active`` queued. Each transaction that finishes an instance
locks the mapped task's row (counting it done), queues the next pending instance, and
the one that finishes the last ends the mapped task with the list of results in item
order and hands that on like any finished task. Messages stay one per instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from orchestrator.model import plan, spec
from orchestrator.model.states import UNFINISHED_TASK, TaskState
from orchestrator.store import advance
from orchestrator.store import statements as sql
from orchestrator.store.results import Change


def problem(items: Any, source: str, max_items: int) -> str | None:
    """Why ``items`` (the result of ``source``) cannot be mapped over, if it cannot."""
    if not isinstance(items, list):
        return (f"task {source!r} returned {type(items).__name__}, and a mapped task needs "
                "a list")
    if len(items) > max_items:
        return (f"task {source!r} returned {len(items)} items, more than "
                f"ORCH_MAX_MAP_ITEMS ({max_items})")
    return None


def lay_out(conn: Connection, run_id: str, task_id: str, items: list[Any], *,
            max_active: int | None, max_attempts: int, now: dt.datetime,
            columns: Mapping[str, Any] | None = None) -> list[tuple[str, int]]:
    """Write one instance row per item and queue the first ``max_active``; return those.

    After a rerun the rows exist: an instance that succeeded on the same item keeps its
    result, the others start over as their next attempt (so a message of an earlier
    attempt is still fenced off), and rows past the end of a shorter list are skipped
    (kept, not deleted, so their attempt numbers never restart). ``columns``: the slot
    columns every instance row gets (store.admission)."""
    key = {"b_run": run_id, "b_parent": task_id}
    existing = {r.map_index: r for r in conn.execute(sql.INSTANCES, key)}
    kept = {i for i, r in existing.items() if i < len(items)
            and r.state == TaskState.SUCCESS and r.map_item == items[i]}
    todo = [i for i in range(len(items)) if i not in kept]
    first = set(todo if max_active is None else todo[:max_active])
    was_unfinished = sum(1 for r in existing.values() if r.state in UNFINISHED_TASK)
    beyond = [r.task_id for i, r in existing.items() if i >= len(items)]
    for chunk in advance.chunks(beyond):
        conn.execute(sql.SKIP_BEYOND, {"b_run": run_id, "b_ids": chunk, "b_now": now})

    def state(i: int) -> tuple[TaskState, dt.datetime | None]:
        return (TaskState.QUEUED, now) if i in first else (TaskState.PENDING, None)

    # Instances queued here are ready now, made so by their mapped task (ready_at, a
    # hand-off's start); those queued later as a slot frees wait on a sibling, not on it.
    new = [{"run_id": run_id, "task_id": spec.map_instance_id(task_id, i), "attempt": 1,
            "max_attempts": max_attempts, "lost_attempts": 0, "remaining": 0,
            "failed_up": 0, "skipped_up": 0, "map_parent": task_id, "map_index": i,
            "map_item": items[i], "state": state(i)[0], "queued_at": state(i)[1],
            "ready_at": state(i)[1], **(columns or {})}
           for i in todo if i not in existing]
    if new:
        conn.execute(sql.INSERT_TASKS, new)
    again = [{"b_run": run_id, "b_task": existing[i].task_id, "b_item": items[i],
              "b_state": state(i)[0], "b_queued_at": state(i)[1], "b_budget": max_attempts}
             for i in todo if i in existing]
    if again:
        conn.execute(sql.RESET_INSTANCE, again)
    queued = sorted(first)
    conn.execute(sql.LAID_OUT, {**key, "b_count": len(items),
                                "b_next": queued[-1] + 1 if queued else 0,
                                "b_done": len(kept)})
    conn.execute(sql.GROW_RUN, {"b_run": run_id, "b_unfinished": len(todo) - was_unfinished,
                                "b_total": len(new)})
    # a new row is attempt 1; a row started over is its next attempt
    return [(spec.map_instance_id(task_id, i), existing[i].attempt + 1 if i in existing else 1)
            for i in queued]


def instance_done(conn: Connection, run_id: str, parent: str, *, failed: bool,
                  p: plan.Plan, now: dt.datetime, change: Change) -> tuple[int, int]:
    """An instance of ``parent`` finished: queue the next pending one, or, if it was the
    last, end ``parent``. The first statement locks ``parent``'s row, so the instances
    of one mapped task finish one at a time and each pending one is queued once.
    Returns the tasks finished and the failed leaves, beyond the instance itself."""
    key = {"b_run": run_id, "b_parent": parent}
    row = conn.execute(sql.INSTANCE_DONE, {**key, "b_failed": 1 if failed else 0}).first()
    if row is None:  # the run was cancelled or timed out meanwhile
        return 0, 0
    if row.map_done < row.map_count:
        # the cursor is past every instance queued so far: nothing left to queue if it
        # reached the end (always, for a map without max_active)
        nxt = None if row.map_next >= row.map_count else conn.execute(
            sql.NEXT_PENDING, {**key, "b_from": row.map_next}).scalar()
        if nxt is None:
            return 0, 0
        conn.execute(sql.MOVE_CURSOR, {**key, "b_cursor": nxt + 1})
        queued = conn.execute(sql.QUEUE_INSTANCE, {
            "b_run": run_id, "b_task": spec.map_instance_id(parent, nxt), "b_now": now})
        change.queued += [(r.task_id, r.attempt) for r in queued]
        return 0, 0
    error = (f"{row.map_failed} of {row.map_count} mapped instances failed"
             if row.map_failed else None)
    return end(conn, run_id, parent, p=p, now=now, error=error, change=change)


def end(conn: Connection, run_id: str, task_id: str, *, p: plan.Plan, now: dt.datetime,
        error: str | None, change: Change) -> tuple[int, int]:
    """End the running mapped task ``task_id``: success with its instances' results in
    item order, or failed with ``error``; then hand the outcome on to its children.
    Returns the tasks finished (itself included) and the failed leaves."""
    key = {"b_run": run_id, "b_parent": task_id}
    state = TaskState.FAILED if error else TaskState.SUCCESS
    result = None if error else list(conn.execute(sql.INSTANCE_RESULTS, key).scalars())
    conn.execute(sql.END_MAPPED, {**key, "b_state": state, "b_result": result,
                                  "b_error": error, "b_now": now})
    change.finished.append((task_id, state))
    settled, failed_leaves = advance.propagate(conn, run_id, p, [(task_id, state, None)], now,
                                               change)
    return 1 + settled, failed_leaves
