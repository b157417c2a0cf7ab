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

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from orchestrator.model import plan, spec
from orchestrator.model.states import UNFINISHED_TASK, TaskState
from orchestrator.store import advance
from orchestrator.store import statements as sql
from orchestrator.store.tables import runs, task_instances

ti = task_instances


@dataclasses.dataclass(frozen=True)
class Ended:
    """What ending a mapped task changed (to add to the finishing transaction's counts)."""

    ready: list[tuple[str, int]]
    finished: int
    failed_leaves: int


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
            max_active: int | None, max_attempts: int,
            now: dt.datetime) -> list[tuple[str, int]]:
    """Write one instance row per item and queue the first ``max_active``; return those.

    After a rerun the rows exist: an instance that succeeded on the same item keeps its
    result, the others start over as their next attempt (so a message of an earlier
    attempt is still fenced off), and rows past the end of a shorter list are skipped
    (kept, not deleted, so their attempt numbers never restart)."""
    existing = {r.map_index: r for r in conn.execute(select(
        ti.c.task_id, ti.c.map_index, ti.c.state, ti.c.map_item, ti.c.attempt).where(
        ti.c.run_id == run_id, ti.c.map_parent == task_id))}
    kept = {i for i, r in existing.items() if i < len(items)
            and r.state == TaskState.SUCCESS and r.map_item == items[i]}
    todo = [i for i in range(len(items)) if i not in kept]
    first = set(todo if max_active is None else todo[:max_active])
    was_unfinished = sum(1 for r in existing.values() if r.state in UNFINISHED_TASK)
    beyond = [r.task_id for i, r in existing.items() if i >= len(items)]
    for chunk in advance.chunks(beyond):
        conn.execute(update(ti).where(ti.c.run_id == run_id, ti.c.task_id.in_(chunk)).values(
            state=TaskState.SKIPPED, finished_at=now, lease_expires_at=None,
            error="past the end of the list it was mapped over"))

    def state(i: int) -> dict[str, Any]:
        queued = i in first
        return {"state": TaskState.QUEUED if queued else TaskState.PENDING,
                "queued_at": now if queued else None}

    new = [{"run_id": run_id, "task_id": spec.map_instance_id(task_id, i), "attempt": 1,
            "max_attempts": max_attempts, "lost_attempts": 0, "remaining": 0,
            "failed_up": 0, "skipped_up": 0, "map_parent": task_id, "map_index": i,
            "map_item": items[i], **state(i)} for i in todo if i not in existing]
    if new:
        conn.execute(insert(ti), new)
    again = [{"b_task": existing[i].task_id, "b_item": items[i], "b_state": state(i)["state"],
              "b_queued_at": state(i)["queued_at"]} for i in todo if i in existing]
    if again:
        conn.execute(_RESET.where(ti.c.run_id == run_id),
                     [{**a, "b_budget": max_attempts} for a in again])
    queued = sorted(first)
    conn.execute(update(ti).where(ti.c.run_id == run_id, ti.c.task_id == task_id).values(
        map_count=len(items), map_next=queued[-1] + 1 if queued else 0, map_done=len(kept),
        map_failed=0, result=None))
    conn.execute(update(runs).where(runs.c.id == run_id).values(
        unfinished=runs.c.unfinished + len(todo) - was_unfinished,
        total_tasks=runs.c.total_tasks + len(new)))
    # a new row is attempt 1; a row started over is its next attempt
    return [(spec.map_instance_id(task_id, i), existing[i].attempt + 1 if i in existing else 1)
            for i in queued]


_RESET = update(ti).where(ti.c.task_id == bindparam("b_task")).values(
    state=bindparam("b_state"), queued_at=bindparam("b_queued_at", type_=ti.c.queued_at.type),
    map_item=bindparam("b_item", type_=ti.c.map_item.type), attempt=ti.c.attempt + 1,
    max_attempts=ti.c.attempt - ti.c.lost_attempts + bindparam("b_budget"),
    result=None, error=None, worker=None, lease_expires_at=None, started_at=None,
    finished_at=None)


def instance_done(conn: Connection, run_id: str, parent: str, *, failed: bool,
                  p: plan.Plan, now: dt.datetime) -> Ended:
    """An instance of ``parent`` finished: queue the next pending one, or, if it was the
    last, end ``parent``. The first statement locks ``parent``'s row, so the instances
    of one mapped task finish one at a time and each pending one is queued once."""
    key = {"b_run": run_id, "b_parent": parent}
    row = conn.execute(sql.INSTANCE_DONE, {**key, "b_failed": 1 if failed else 0}).first()
    if row is None:  # the run was cancelled or timed out meanwhile
        return Ended([], 0, 0)
    if row.map_done < row.map_count:
        # the cursor is past every instance queued so far: nothing left to queue if it
        # reached the end (always, for a map without max_active)
        nxt = None if row.map_next >= row.map_count else conn.execute(
            sql.NEXT_PENDING, {**key, "b_from": row.map_next}).scalar()
        if nxt is None:
            return Ended([], 0, 0)
        conn.execute(sql.MOVE_CURSOR, {**key, "b_cursor": nxt + 1})
        queued = conn.execute(sql.QUEUE_INSTANCE, {
            "b_run": run_id, "b_task": spec.map_instance_id(parent, nxt), "b_now": now})
        return Ended([(r.task_id, r.attempt) for r in queued], 0, 0)
    error = (f"{row.map_failed} of {row.map_count} mapped instances failed"
             if row.map_failed else None)
    return end(conn, run_id, parent, p=p, now=now, error=error)


def end(conn: Connection, run_id: str, task_id: str, *, p: plan.Plan, now: dt.datetime,
        error: str | None) -> Ended:
    """End the running mapped task ``task_id``: success with its instances' results in
    item order, or failed with ``error``; then hand the outcome on to its children."""
    state = TaskState.FAILED if error else TaskState.SUCCESS
    result = None if error else list(conn.execute(select(ti.c.result).where(
        ti.c.run_id == run_id, ti.c.map_parent == task_id,
        ti.c.state == TaskState.SUCCESS).order_by(ti.c.map_index)).scalars())
    conn.execute(update(ti).where(
        ti.c.run_id == run_id, ti.c.task_id == task_id, ti.c.state == TaskState.RUNNING,
    ).values(state=state, result=result, error=error, finished_at=now))
    ready, settled, failed_leaves = advance.propagate(conn, run_id, p,
                                                      [(task_id, state, None)], now)
    return Ended(ready, 1 + settled, failed_leaves)
