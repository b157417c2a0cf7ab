"""Mapped tasks on real workers: one task instance per item, results in item order, a
bound on instances in flight, failures, reruns that keep what succeeded, cancel."""

from __future__ import annotations

from collections import Counter

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import Ledger, wait_idle, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


def _instances(run_tasks: dict, parent: str) -> list:  # type: ignore[type-arg]
    return sorted((t for t in run_tasks.values() if t.map_parent == parent),
                  key=lambda t: t.map_index)


def test_each_item_is_a_task_instance_and_results_arrive_in_order(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("mapsq", {"n": 5, "factor": 3})
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    squares = [3 * i * i for i in range(5)]
    assert client.result(run_id, "total") == {"xs": squares, "sum": sum(squares)}
    assert client.result(run_id, "square") == squares
    inst = _instances(run.tasks, "square")
    assert [(t.task_id, t.map_index, t.map_item, t.result, t.state) for t in inst] == [
        (f"square[{i}]", i, i, 3 * i * i, TaskState.SUCCESS) for i in range(5)]
    assert all([a.outcome for a in t.attempts] == [AttemptOutcome.SUCCESS] for t in inst)
    assert run.tasks["square"].map_count == 5
    assert run.total_tasks == 3 + 5
    counts = Counter(e["task"] for e in ledger.entries(run_id))
    assert counts == {**{f"square[{i}]": 1 for i in range(5)}, "total": 1}


def test_yaml_mapping_with_a_bound(client: Client) -> None:
    run_id = client.submit("yaml_map", {"n": 4})
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.result(run_id, "sum") == {"xs": [0, 2, 8, 18], "sum": 28}


def test_a_map_over_a_map_and_over_an_empty_list(client: Client) -> None:
    run_id = client.submit("mapmap", {"n": 4})
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.result(run_id, "total") == {"xs": [0, 1, 16, 81], "sum": 98}
    empty = client.submit("mapmap", {"n": 0})
    run = client.wait(empty, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(empty, "total") == {"xs": [], "sum": 0}
    assert run.tasks["square"].map_count == 0
    assert set(run.tasks) == {"listing", "square", "square__1", "total"}


def test_no_more_than_max_active_instances_are_in_flight(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("mapbound", {"n": 6})

    def states() -> list[TaskState]:
        return [t.state for t in _instances(client.get_run(run_id).tasks, "held")]

    wait_until(lambda: states().count(TaskState.RUNNING) == 2, what="two instances running")
    # The two running block on a gate, so nothing moves until it opens: the bound holds
    # if and only if the other four were never queued.
    assert states() == [TaskState.RUNNING] * 2 + [TaskState.PENDING] * 4
    # progress counts the instances too (a bar's total grows as a mapped task starts)
    seen: list[tuple[dict[TaskState, int], int]] = []
    with pytest.raises(errors.WaitTimeout):
        client.wait(run_id, timeout=0.2, on_progress=lambda c, n: seen.append((c, n)))
    counts, total = seen[-1]
    assert total == 3 + 6
    assert (counts[TaskState.RUNNING], counts[TaskState.PENDING]) == (1 + 2, 1 + 4)
    ledger.open_gate(run_id, "go")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == list(range(6))
    assert Counter(e["task"] for e in ledger.entries(run_id)) == {
        **{f"held[{i}]": 1 for i in range(6)}, "total": 1}


def test_failed_instances_fail_the_map_and_a_rerun_runs_only_them(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("mapfix", {"n": 6})
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    assert run.tasks["picky"].state == TaskState.FAILED
    assert run.tasks["picky"].error == "2 of 6 mapped instances failed"
    assert run.tasks["total"].state == TaskState.UPSTREAM_FAILED
    assert [t.state for t in _instances(run.tasks, "picky")] == [
        TaskState.FAILED if i % 3 == 1 else TaskState.SUCCESS for i in range(6)]

    ledger.open_gate(run_id, "fix")
    assert client.rerun(run_id) == ["picky", "total"]
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == [10 * i for i in range(6)]
    counts = Counter(e["task"] for e in ledger.entries(run_id))
    assert counts == {**{f"picky[{i}]": 2 if i % 3 == 1 else 1 for i in range(6)}, "total": 1}
    assert [(a.attempt, a.outcome) for a in run.tasks["picky[4]"].attempts] == [
        (1, AttemptOutcome.FAILED), (2, AttemptOutcome.SUCCESS)]

    # From a named mapped task, every instance runs again.
    assert client.rerun(run_id, from_task="picky") == ["picky", "total"]
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    counts = Counter(e["task"] for e in ledger.entries(run_id))
    assert counts == {**{f"picky[{i}]": 3 if i % 3 == 1 else 2 for i in range(6)},
                      "total": 2}


def test_mapping_over_something_not_a_list_fails_the_mapped_task(client: Client) -> None:
    run_id = client.submit("mapbad")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    assert run.tasks["square"].state == TaskState.FAILED
    assert run.tasks["square"].error == ("MapError: task 'not_a_list' returned dict, and a "
                                         "mapped task needs a list")
    assert run.tasks["total"].state == TaskState.UPSTREAM_FAILED
    assert not [t for t in run.tasks.values() if t.map_parent]


def test_an_instance_knows_its_own_task_id(client: Client) -> None:
    run_id = client.submit("mapctx")
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.result(run_id, "whoami") == [[f"whoami[{i}]", 1, i] for i in range(3)]


def test_cancel_stops_the_instances_still_to_run(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("mapbound", {"n": 6})
    wait_until(lambda: len(ledger.entries(run_id)) == 2, what="two instances started")
    client.cancel(run_id)
    run = client.get_run(run_id)
    assert run.state == RunState.CANCELLED
    assert {t.state for t in _instances(run.tasks, "held")} == {TaskState.CANCELLED}
    assert run.tasks["held"].state == TaskState.CANCELLED
    started = {e["task"] for e in ledger.entries(run_id)}
    assert len(started) == 2
    ledger.open_gate(run_id, "go")
    wait_idle(client.settings)
    # nothing new started: the cancelled instances' rows refused every claim
    assert client.store.run_state(run_id) == RunState.CANCELLED
    assert {e["task"] for e in ledger.entries(run_id)} == started


def test_a_rerun_over_a_shorter_list_skips_the_instances_past_its_end(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("mapvary")
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == [1, 4, 9, 16]
    ledger.open_gate(run_id, "short")
    assert client.rerun(run_id, from_task="varying") == ["varying", "square", "total"]
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == [1, 4]
    inst = _instances(run.tasks, "square")
    assert [(t.state, t.attempt) for t in inst] == [
        (TaskState.SUCCESS, 2), (TaskState.SUCCESS, 2),
        (TaskState.SKIPPED, 1), (TaskState.SKIPPED, 1)]
    assert run.tasks["square"].map_count == 2
    assert run.total_tasks == 3 + 4 and run.unfinished == 0
