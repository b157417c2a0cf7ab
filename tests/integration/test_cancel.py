"""Cancel a run: queued tasks never start, running ones are terminated."""

from __future__ import annotations

import pytest

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.model.states import RunState, TaskState
from tests.support import Ledger, alive, wait_idle, wait_until

pytestmark = pytest.mark.integration



def test_cancel_terminates_the_running_task_and_starts_nothing_more(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("killme")
    (entry,) = wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
    client.cancel(run_id)
    run = client.wait(run_id, timeout=30)
    assert run.state == RunState.CANCELLED
    assert {t: ti.state for t, ti in run.tasks.items()} == {
        "first": "success", "gated": "cancelled", "last": "cancelled"}
    assert run.tasks["last"].error == "the run was cancelled"
    wait_until(lambda: not alive(entry["pid"]), timeout=30,
               what="the process running 'gated' to be terminated")
    ledger.open_gate(run_id, "go")  # too late: nothing of this run may run any more
    wait_idle(client.settings)  # whatever was sent has been delivered and dropped by now
    assert not ledger.of(run_id, "last")
    assert [e["task"] for e in ledger.entries(run_id)] == ["first", "gated"]
    with pytest.raises(errors.Conflict, match="already cancelled"):
        client.cancel(run_id)


def test_a_cancelled_run_can_be_rerun(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("killme")
    wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
    client.cancel(run_id)
    assert client.wait(run_id, timeout=30).state == RunState.CANCELLED
    ledger.open_gate(run_id, "go")
    assert client.rerun(run_id) == ["gated", "last"]
    run = client.wait(run_id, timeout=60)
    assert run.state == RunState.SUCCESS
    assert run.tasks["gated"].state == TaskState.SUCCESS
    assert len(ledger.of(run_id, "first")) == 1
