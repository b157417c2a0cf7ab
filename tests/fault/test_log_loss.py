"""A worker SIGKILLed mid-task: what it flushed stays in the lost attempt's log, which
ends with the lost-worker marker; the attempt that takes over writes a stream of its own."""

from __future__ import annotations

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.records import LOST_WORKER_MARKER
from orchestrator.model.states import AttemptOutcome, RunState
from tests.support import Ledger, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 120


def test_a_killed_workers_log_keeps_its_flushed_lines_and_ends_with_the_marker(
        own_stack: LocalStack, ledger: Ledger) -> None:
    victim = own_stack.add_worker("victim", concurrency=1)
    with Client(own_stack.settings) as client:
        run_id = client.submit("logs_killed")
        wait_until(lambda: ledger.of(run_id, "dies_talking"), what="the task to start")
        wait_until(lambda: client.logs(run_id, "dies_talking", 1)
                   == "attempt 1: line before the kill\n",
                   what="the line to be flushed while the task runs")
        victim.kill()  # SIGKILL to the worker and its pool: no final flush, no cleanup
        own_stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
        assert run.state == RunState.SUCCESS
        attempts = run.tasks["dies_talking"].attempts
        assert [a.outcome for a in attempts] == [AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
        lost = client.log_chunks(run_id, "dies_talking", 1)[1]
        assert [c.data for c in lost] == ["attempt 1: line before the kill\n",
                                          LOST_WORKER_MARKER]
        assert [c.seq for c in lost] == [1, 2]
        assert client.logs(run_id, "dies_talking") == "attempt 2: line before the kill\n"
        assert client.result(run_id, "dies_talking") == "survived at attempt 2"


def test_an_attempt_given_up_as_lost_ends_with_the_marker_too(own_stack: LocalStack) -> None:
    """A task that kills its worker every time: two attempts taken over, the third given
    up (WorkerLost, by the worker that found it lost); each log ends with the marker."""
    own_stack.add_worker("target", concurrency=1)
    with Client(own_stack.settings) as client:
        run = client.wait(client.submit("suicidal"), timeout=WAIT_S)
        attempts = run.tasks["suicidal"].attempts
        assert [(a.outcome, a.error_type) for a in attempts] == [
            (AttemptOutcome.LOST, "WorkerLost"), (AttemptOutcome.LOST, "WorkerLost"),
            (AttemptOutcome.FAILED, "WorkerLost")]
        for a in attempts:
            assert client.logs(run.id, "suicidal", a.attempt) == LOST_WORKER_MARKER
