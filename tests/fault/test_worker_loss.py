"""Workers lost mid-task (SIGKILL), a task that kills its worker, a warm shutdown."""

from __future__ import annotations

import signal

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import Ledger, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 120


def test_worker_killed_mid_task_and_replaced(own_stack: LocalStack, ledger: Ledger) -> None:
    victim = own_stack.add_worker("victim", concurrency=1)
    with Client(own_stack.settings) as client:
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        assert client.get_run(run_id).tasks["gated"].state == TaskState.RUNNING
        victim.kill()  # SIGKILL to the worker and its pool: no ack, no cleanup
        ledger.open_gate(run_id, "go")
        own_stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    gated = run.tasks["gated"]
    assert [a.outcome for a in gated.attempts] == [AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    assert gated.worker is not None and gated.worker.startswith("rescuer@")
    runs_of_gated = ledger.of(run_id, "gated")
    assert [e["attempt"] for e in runs_of_gated] == [1, 2]
    assert runs_of_gated[0]["pid"] != runs_of_gated[1]["pid"]
    for task_id in ("first", "last"):
        assert len(ledger.of(run_id, task_id)) == 1
    for t in run.tasks.values():
        assert t.state == TaskState.SUCCESS
        assert sum(a.outcome == AttemptOutcome.SUCCESS for a in t.attempts) == 1
    assert client.result(run_id, "last") == "passed"


def test_a_task_that_kills_its_worker_every_time_ends_failed(
        own_stack: LocalStack, ledger: Ledger) -> None:
    own_stack.add_worker("target", concurrency=1)
    with Client(own_stack.settings) as client:
        run = client.wait(client.submit("suicidal"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    t = run.tasks["suicidal"]
    assert t.state == TaskState.FAILED
    assert [a.outcome for a in t.attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.LOST, AttemptOutcome.FAILED]
    assert t.attempts[-1].error_type == "WorkerLost"
    # three executions, then no more: the user's 5 retries are not spent on lost workers
    assert [e["attempt"] for e in ledger.of(run.id, "suicidal")] == [1, 2, 3]
    assert run.tasks["after"].state == TaskState.UPSTREAM_FAILED


def test_sigterm_lets_the_running_task_finish_once(own_stack: LocalStack,
                                                   ledger: Ledger) -> None:
    leaving = own_stack.add_worker("leaving", concurrency=1)
    with Client(own_stack.settings) as client:
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        own_stack.add_worker("staying", concurrency=1)
        leaving.proc.send_signal(signal.SIGTERM)  # warm shutdown: finish, then exit
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=WAIT_S)
        assert leaving.proc.wait(timeout=60) == 0
    assert run.state == RunState.SUCCESS
    gated = run.tasks["gated"]
    assert [a.outcome for a in gated.attempts] == [AttemptOutcome.SUCCESS]
    assert gated.worker is not None and gated.worker.startswith("leaving@")
    assert len(ledger.of(run_id, "gated")) == 1
    assert run.tasks["last"].worker is not None
    assert run.tasks["last"].worker.startswith("staying@")
