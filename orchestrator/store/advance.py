"""How a finished task hands its outcome on, inside the transaction that records it:
its children count it and their trigger rules decide, and the run counts it down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence

from sqlalchemy import Connection

from orchestrator.model import plan, triggers
from orchestrator.model.states import RunState, TaskState
from orchestrator.store import backfills, run_slots
from orchestrator.store import statements as sql
from orchestrator.store.results import Change

_IN_CHUNK = 900  # stays under every backend's bound-parameter limit


def propagate(conn: Connection, run_id: str, p: plan.Plan,
              finished: list[tuple[str, TaskState, Collection[str] | None]],
              now: dt.datetime, change: Change) -> tuple[int, int]:
    """Hand each finished task's outcome to its children and apply their trigger rules.

    A child its rule settles as skipped or upstream_failed is finished too, and hands
    that on in turn. Children now ready go to ``change.queued``, settled ones to
    ``change.finished``. Returns how many tasks this settled, and how many failed leaves
    there are among the finished and the settled tasks (the run fails if any leaf
    fails, as in Airflow)."""
    settled = 0
    failed_leaves = sum(1 for t, o, _ in finished
                        if o == TaskState.FAILED and not p.downstream[t])
    todo = list(finished)
    while todo:
        parent, outcome, chosen = todo.pop()
        decided = _count_parent(conn, run_id, p, parent, outcome, chosen, now, change)
        for state, children in decided.items():
            rows = _settle(conn, run_id, children, state, parent, now)
            if state == TaskState.QUEUED:
                change.queued += rows
                continue
            settled += len(rows)
            for task_id, _ in rows:
                change.finished.append((task_id, state))
                if state == TaskState.UPSTREAM_FAILED and not p.downstream[task_id]:
                    failed_leaves += 1
                todo.append((task_id, state, None))
    return settled, failed_leaves


def _count_parent(conn: Connection, run_id: str, p: plan.Plan, parent: str,
                  outcome: TaskState, chosen: Collection[str] | None, now: dt.datetime,
                  change: Change) -> dict[TaskState, list[str]]:
    """Count ``parent``'s outcome in each child; return the children a rule settled.

    The hot path, a success reaching all_success children, is decided in SQL in the
    same statement (appended to ``change.queued``); the other children are decided here."""
    fast: list[str] = []
    by_outcome: dict[TaskState, list[str]] = {}
    for child in p.downstream[parent]:
        o = TaskState.SKIPPED if chosen is not None and child not in chosen else outcome
        rule = p.trigger_rules[child]
        if o == TaskState.SUCCESS and rule == triggers.TriggerRule.ALL_SUCCESS:
            fast.append(child)
        else:
            by_outcome.setdefault(o, []).append(child)
    for chunk in chunks(fast):
        change.queued += [(r.task_id, r.attempt) for r in conn.execute(
            sql.RELEASE_ON_SUCCESS, {"b_run": run_id, "b_ids": chunk, "b_now": now})
            if r.remaining == 0 and r.state == TaskState.QUEUED]
    decided: dict[TaskState, list[str]] = {}
    for o, children in by_outcome.items():
        bad = 1 if o in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) else 0
        for chunk in chunks(children):
            for r in conn.execute(sql.RELEASE, {
                    "b_run": run_id, "b_ids": chunk, "b_f": bad,
                    "b_s": 1 if o == TaskState.SKIPPED else 0}):
                if r.state != TaskState.PENDING:
                    continue
                n = len(p.upstream[r.task_id])
                d = triggers.decide(p.trigger_rules[r.task_id], n, n - r.remaining,
                                    r.failed_up, r.skipped_up)
                if d != triggers.Decision.WAIT:
                    state = (TaskState.QUEUED if d == triggers.Decision.RUN
                             else TaskState(d.value))
                    decided.setdefault(state, []).append(r.task_id)
    return decided


def _settle(conn: Connection, run_id: str, children: list[str], state: TaskState,
            parent: str, now: dt.datetime) -> list[tuple[str, int]]:
    """Move children out of pending (compare-and-set: of racing parents, one decides)."""
    out: list[tuple[str, int]] = []
    for chunk in chunks(children):
        out += [(r.task_id, r.attempt) for r in conn.execute(sql.SETTLE, {
            "b_run": run_id, "b_ids": chunk, "b_state": state,
            "b_queued_at": now if state == TaskState.QUEUED else None,
            "b_finished_at": None if state == TaskState.QUEUED else now,
            "b_error": _why(state, parent)})]
    return out


def count_down(conn: Connection, run_id: str, *, finished: int, failed: int,
               now: dt.datetime, change: Change, p: plan.Plan | None = None) -> None:
    """Count ``finished`` tasks down in the run; the transaction that reaches zero ends it
    (and, in a DAG with ``max_active_runs``, starts the next queued run; in a backfill,
    its next logical time)."""
    left, failures = conn.execute(sql.COUNT_DOWN, {
        "b_run": run_id, "b_finished": finished, "b_failed": failed}).one()
    if left > 0:
        return
    state = RunState.FAILED if failures else RunState.SUCCESS
    ended = conn.execute(sql.END_RUN, {"b_run": run_id, "b_state": state,
                                       "b_now": now}).first()
    if ended is not None:
        change.run_state = state
        if p is not None and p.max_active_runs is not None:
            run_slots.start_next(conn, p.dag_id, now, change, p.max_active_runs)
        if ended.backfill_id is not None:
            backfills.advance(conn, ended.backfill_id, now, change)


def _why(state: TaskState, parent: str) -> str | None:
    if state == TaskState.UPSTREAM_FAILED:
        return f"upstream task {parent!r} did not succeed"
    if state == TaskState.SKIPPED:
        return f"skipped by its trigger rule after {parent!r}"
    return None


def chunks(items: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield list(items[i:i + _IN_CHUNK])
