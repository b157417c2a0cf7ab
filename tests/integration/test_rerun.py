"""Rerun a finished run from failure, or from a named task, keeping earlier results."""

from __future__ import annotations

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import Ledger, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


def test_rerun_continues_from_the_failure(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("fixable")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    assert {t: ti.state for t, ti in run.tasks.items()} == {
        "a": "success", "needs_fix": "failed", "b": "upstream_failed", "side": "success"}

    ledger.open_gate(run_id, "fix")
    assert client.rerun(run_id) == ["needs_fix", "b"]
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "b") == "fixed"
    fix = run.tasks["needs_fix"]
    assert [(a.attempt, a.outcome) for a in fix.attempts] == [
        (1, AttemptOutcome.FAILED), (2, AttemptOutcome.SUCCESS)]
    # what had succeeded ran once and kept its result; what was rerun ran again once
    assert [len(ledger.of(run_id, t)) for t in ("a", "side", "needs_fix", "b")] == [1, 1, 2, 1]
    assert run.tasks["a"].attempt == 1 and run.tasks["b"].attempt == 2


def test_rerun_from_a_named_task_reruns_it_and_its_downstream(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("chain20", {"start": 1})
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
    assert client.rerun(run_id, from_task="inc__17") == ["inc__17", "inc__18", "inc__19"]
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "inc__19") == 21
    assert len(ledger.of(run_id, "inc__16")) == 1
    assert [e["attempt"] for e in ledger.of(run_id, "inc__17")] == [1, 2]
    assert [a.attempt for a in run.tasks["inc__19"].attempts] == [1, 2]


def test_rerun_refuses_and_changes_nothing(client: Client, ledger: Ledger) -> None:
    done = client.submit("chain20")
    assert client.wait(done, timeout=WAIT_S).state == RunState.SUCCESS
    running = client.submit("nshape")
    # and d done: it may start after c, and its attempt row would count as a change
    wait_until(lambda: (t := client.get_run(running).tasks)["c"].state == TaskState.RUNNING
               and t["d"].state == TaskState.SUCCESS, what="c to run and d to be done")
    before = client.store.count_rows()
    with pytest.raises(errors.Conflict, match="no failed task"):
        client.rerun(done)
    with pytest.raises(errors.UnknownTask):
        client.rerun(done, from_task="nope")
    with pytest.raises(errors.Conflict, match="still running"):
        client.rerun(running)
    with pytest.raises(errors.UnknownRun):
        client.rerun("0" * 32)
    assert client.store.count_rows() == before
    assert client.store.run_state(done) == RunState.SUCCESS
    ledger.open_gate(running, "c")
    assert client.wait(running, timeout=WAIT_S).state == RunState.SUCCESS
