"""Pure: which tasks a rerun resets, and to what, given how the run ended."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator import errors
from orchestrator.model import plan as plan_
from orchestrator.model import triggers
from orchestrator.model.states import TaskState

Reset = tuple[TaskState, int, int, int]
"""A reset task's new state, and its parents still to finish, failed and skipped."""

_FAILED = (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)


def targets(p: plan_.Plan, state: Mapping[str, TaskState], from_task: str | None) -> set[str]:
    """The tasks to run again: ``from_task`` and its descendants, or what did not succeed."""
    if from_task is not None:
        if from_task not in state:
            raise errors.UnknownTask(f"DAG {p.dag_id!r} has no task {from_task!r} (rerun a "
                                     "mapped task as a whole, by its own id)")
        return {from_task, *p.descendants(from_task)}
    return {t for t, s in state.items() if s in _FAILED}


def plan_reset(p: plan_.Plan, state: Mapping[str, TaskState],
               chosen: set[str]) -> dict[str, Reset]:
    """For each task to rerun, in dependency order: its new state, and its parents still
    to finish, failed and skipped (what its trigger rule reads).

    A task whose rule is already settled by parents that are not rerun (a failure that
    stays, say) is skipped or upstream_failed straight away, and its children see that."""
    reset: dict[str, Reset] = {}
    for t in p.order:
        if t not in chosen:
            continue
        waiting = failed = skipped = 0
        for u in p.upstream[t]:
            s = reset[u][0] if u in reset else state[u]
            if s in (TaskState.PENDING, TaskState.QUEUED):
                waiting += 1
            elif s in _FAILED:
                failed += 1
            elif s == TaskState.SKIPPED:
                skipped += 1
        n = len(p.upstream[t])
        d = triggers.decide(p.trigger_rules[t], n, n - waiting, failed, skipped)
        new = {triggers.Decision.RUN: TaskState.QUEUED,
               triggers.Decision.WAIT: TaskState.PENDING}.get(d) or TaskState(d.value)
        reset[t] = (new, waiting, failed, skipped)
    return reset
