"""Run and task states, and the transitions the store is allowed to make.

Every transition is a compare-and-set UPDATE in :mod:`orchestrator.store.statements`
(``... WHERE state IN (:from_states) AND attempt = :n``); this table is the contract
those statements implement and the unit tests check.
"""

from __future__ import annotations

import enum


class RunState(enum.StrEnum):
    QUEUED = "queued"
    """Created, waiting for a run slot (its DAG's max_active_runs, a backfill's
    max_active); started in logical-time order by the transaction that frees one."""
    RUNNING = "running"
    """Submitted; some task is not finished yet."""
    SUCCESS = "success"
    """Every task succeeded."""
    FAILED = "failed"
    """Every task finished and a leaf failed or was upstream_failed."""
    CANCELLED = "cancelled"
    """Cancelled: nothing more starts, running tasks were terminated."""


class TaskState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for upstream tasks."""
    WAITING = "waiting"
    """Ready, waiting for a slot (its pool, its DAG's max_active_tasks): the transaction
    that frees one queues the waiter with the highest priority, then the oldest."""
    QUEUED = "queued"
    """Every upstream task succeeded; a message for this attempt is on its way."""
    UP_FOR_RETRY = "up_for_retry"
    """The last attempt failed; the next attempt is scheduled after its backoff."""
    RUNNING = "running"
    """A worker claimed the attempt and holds its lease."""
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    """A sensor between pokes: no worker holds it; the coordinator sends it at wake_at."""
    SUCCESS = "success"
    FAILED = "failed"
    """The last allowed attempt failed."""
    UPSTREAM_FAILED = "upstream_failed"
    """An upstream task failed, so this one never runs."""
    SKIPPED = "skipped"
    """Its trigger rule or a branch upstream decided it does not run."""
    CANCELLED = "cancelled"
    """The run was cancelled before this task finished."""


class AttemptOutcome(enum.StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    RESCHEDULED = "rescheduled"
    """A sensor's poke found its condition not met yet: the next poke is a new attempt."""
    LOST = "lost"
    """The worker stopped renewing the lease (killed, cut off); a new attempt took over."""


FINISHED_RUN = frozenset({RunState.SUCCESS, RunState.FAILED, RunState.CANCELLED})
FINISHED_TASK = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.UPSTREAM_FAILED,
                           TaskState.SKIPPED, TaskState.CANCELLED})
UNFINISHED_TASK = frozenset(set(TaskState) - FINISHED_TASK)
CLAIMABLE = frozenset({TaskState.QUEUED, TaskState.UP_FOR_RETRY})
HOLDS_SLOT = frozenset({TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY})
"""States in which a task holds its pool slot(s): the pool's usage is counted over them."""

TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.PENDING: frozenset({TaskState.QUEUED, TaskState.WAITING,
                                  TaskState.UPSTREAM_FAILED, TaskState.SKIPPED,
                                  TaskState.CANCELLED}),
    TaskState.WAITING: frozenset({TaskState.QUEUED, TaskState.CANCELLED}),
    TaskState.UP_FOR_RESCHEDULE: frozenset({TaskState.QUEUED, TaskState.WAITING,
                                            TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.CANCELLED}),
    TaskState.UP_FOR_RETRY: frozenset({TaskState.RUNNING, TaskState.CANCELLED}),
    # RUNNING -> RUNNING is a takeover of a lost attempt by attempt n+1.
    TaskState.RUNNING: frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.UP_FOR_RETRY,
                                  TaskState.RUNNING, TaskState.UP_FOR_RESCHEDULE,
                                  TaskState.CANCELLED}),
    TaskState.SUCCESS: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.UPSTREAM_FAILED: frozenset(),
    TaskState.SKIPPED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


def can_move(old: TaskState, new: TaskState) -> bool:
    return new in TRANSITIONS[old]
