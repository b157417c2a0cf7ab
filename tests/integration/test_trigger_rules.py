"""Trigger rules, skipped propagation and branching on real workers."""

from __future__ import annotations

import pytest

from orchestrator.client import Client
from orchestrator.model.states import RunState, TaskState
from tests.support import Ledger, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


def test_each_trigger_rule_after_one_success_and_one_failure(client: Client) -> None:
    run = client.wait(client.submit("rules"), timeout=WAIT_S)
    states = {t: ti.state for t, ti in run.tasks.items()}
    assert states == {
        "good": "success", "broken": "failed",
        "r_all_success": "upstream_failed", "r_all_failed": "success", "r_all_done": "success",
        "r_one_success": "success", "r_one_failed": "success",
        "r_none_failed": "upstream_failed", "r_none_skipped": "success"}
    assert run.state == RunState.FAILED  # leaves r_all_success and r_none_failed failed
    assert "did not succeed" in (run.tasks["r_all_success"].error or "")


def test_a_handled_failure_does_not_fail_the_run(client: Client) -> None:
    run = client.wait(client.submit("handled"), timeout=WAIT_S)
    assert run.tasks["broken"].state == TaskState.FAILED
    assert run.tasks["cleanup"].state == TaskState.SUCCESS
    assert run.state == RunState.SUCCESS


@pytest.mark.parametrize(("pick", "ran", "skipped"), [
    ("left", {"choose", "left", "join"}, {"right", "right_child"}),
    ("right", {"choose", "right", "right_child", "join"}, {"left"}),
])
def test_branching_skips_the_branches_not_chosen(client: Client, pick: str, ran: set[str],
                                                 skipped: set[str]) -> None:
    run = client.wait(client.submit("branchy", {"pick": pick}), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert {t for t, ti in run.tasks.items() if ti.state == TaskState.SUCCESS} == ran
    assert {t for t, ti in run.tasks.items() if ti.state == TaskState.SKIPPED} == skipped
    assert all(not run.tasks[t].attempts for t in skipped)  # never sent, never run


def test_a_branch_naming_an_unknown_task_fails(client: Client) -> None:
    run = client.wait(client.submit("branchy", {"pick": "nowhere"}), timeout=WAIT_S)
    assert run.tasks["choose"].state == TaskState.FAILED
    assert run.tasks["choose"].attempts[0].error_type == "BranchError"
    assert run.state == RunState.FAILED


def test_one_success_does_not_wait_for_the_other_parents(client: Client,
                                                          ledger: Ledger) -> None:
    run_id = client.submit("early")

    def first_one_done_while_slow_runs() -> bool:
        tasks = client.get_run(run_id).tasks
        return (tasks["first_one"].state == TaskState.SUCCESS
                and tasks["slow"].state == TaskState.RUNNING)

    wait_until(first_one_done_while_slow_runs, what="first_one to finish before slow")
    ledger.open_gate(run_id, "go")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert run.tasks["first_one"].finished_at < run.tasks["slow"].finished_at
