"""The task state machine: the table the store's compare-and-set updates implement."""

from __future__ import annotations

import pytest

from orchestrator.model.states import (
    CLAIMABLE,
    FINISHED_RUN,
    FINISHED_TASK,
    TRANSITIONS,
    AttemptOutcome,
    RunState,
    TaskState,
    can_move,
)


def reachable_from(state: TaskState) -> set[TaskState]:
    seen: set[TaskState] = set()
    todo = [state]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(TaskState)
    for targets in TRANSITIONS.values():
        assert targets <= set(TaskState)


def test_finished_states_have_no_exits_and_others_do() -> None:
    for state, targets in TRANSITIONS.items():
        if state in FINISHED_TASK:
            assert targets == frozenset(), state
        else:
            assert targets, state


def test_every_unfinished_state_can_finish() -> None:
    for state in set(TaskState) - FINISHED_TASK:
        assert reachable_from(state) & FINISHED_TASK, state


def test_every_state_is_reachable_from_pending() -> None:
    assert reachable_from(TaskState.PENDING) | {TaskState.PENDING} == set(TaskState)


def test_nothing_returns_to_pending_or_queued_from_later_states() -> None:
    # queued is entered from pending, from waiting (a slot freed) or from a sensor's
    # wait between pokes: never from running or a final state
    before_queued = {TaskState.PENDING, TaskState.WAITING, TaskState.UP_FOR_RESCHEDULE}
    for state, targets in TRANSITIONS.items():
        assert TaskState.PENDING not in targets
        if state not in before_queued:
            assert TaskState.QUEUED not in targets, state


def test_claimable_states_move_to_running() -> None:
    assert {TaskState.QUEUED, TaskState.UP_FOR_RETRY} == CLAIMABLE
    for state in CLAIMABLE:
        assert can_move(state, TaskState.RUNNING)


@pytest.mark.parametrize(("old", "new", "ok"), [
    (TaskState.PENDING, TaskState.QUEUED, True),
    (TaskState.PENDING, TaskState.UPSTREAM_FAILED, True),
    (TaskState.PENDING, TaskState.RUNNING, False),   # must be queued first
    (TaskState.PENDING, TaskState.SUCCESS, False),
    (TaskState.QUEUED, TaskState.RUNNING, True),
    (TaskState.QUEUED, TaskState.SUCCESS, False),    # a result needs a claimed attempt
    (TaskState.QUEUED, TaskState.UPSTREAM_FAILED, False),
    (TaskState.RUNNING, TaskState.SUCCESS, True),
    (TaskState.RUNNING, TaskState.FAILED, True),
    (TaskState.RUNNING, TaskState.UP_FOR_RETRY, True),
    (TaskState.RUNNING, TaskState.RUNNING, True),    # takeover of a lost attempt
    (TaskState.RUNNING, TaskState.QUEUED, False),
    (TaskState.UP_FOR_RETRY, TaskState.RUNNING, True),
    (TaskState.UP_FOR_RETRY, TaskState.FAILED, False),
    (TaskState.SUCCESS, TaskState.RUNNING, False),   # a late duplicate cannot reopen it
    (TaskState.SUCCESS, TaskState.FAILED, False),
    (TaskState.FAILED, TaskState.UP_FOR_RETRY, False),
    (TaskState.UPSTREAM_FAILED, TaskState.QUEUED, False),
])
def test_can_move(old: TaskState, new: TaskState, ok: bool) -> None:
    assert can_move(old, new) is ok


def test_finished_sets_and_values() -> None:
    assert {RunState.SUCCESS, RunState.FAILED, RunState.CANCELLED} == FINISHED_RUN
    assert RunState.RUNNING not in FINISHED_RUN
    assert {TaskState.SUCCESS, TaskState.FAILED, TaskState.UPSTREAM_FAILED,
            TaskState.SKIPPED, TaskState.CANCELLED} == FINISHED_TASK
    # stored as plain strings in the database
    assert TaskState("up_for_retry") is TaskState.UP_FOR_RETRY
    assert TaskState.UPSTREAM_FAILED == "upstream_failed"
    assert {o.value for o in AttemptOutcome} == {"running", "success", "failed",
                                                 "rescheduled", "lost"}
    assert len({s.value for s in TaskState}) == len(TaskState)
