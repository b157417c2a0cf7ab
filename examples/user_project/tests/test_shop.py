"""Tests of the shop's DAG as its authors write them: in this process with ``Dag.test()``,
and on real processes with the orchestrator pytest plugin's ``orch_stack`` and
``orch_client`` (no conftest.py: the plugin comes with the package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shop import CardDeclined, count, nightly_charges

from orchestrator.client import Client
from orchestrator.model.states import AttemptOutcome, RunState
from orchestrator.testing import wait_until
from orchestrator.testing.stack import OrchStack

WAIT_S = 120


def _params(tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {"ledger": str(tmp_path / "ledger.db"), **more}


# -- in process: Dag.test() ---------------------------------------------------------------

def test_the_flaky_rate_service_is_retried(tmp_path: Path) -> None:
    run = nightly_charges.test(**_params(tmp_path))
    tries = run.attempts["fetch_rate"]
    assert len(tries) == 3
    assert [a.error_type for a in tries] == ["ConnectionError", "ConnectionError", None]
    assert [a.retry_delay for a in tries] == [0.1, 0.2, None]  # recorded, not waited
    assert run["send_receipt"] == "receipt for order-1: 11.0"
    assert run["close_books"] == 1
    assert run.states["alert_finance"] == "skipped"  # nothing failed


def test_a_declined_card_alerts_finance_and_still_closes_the_books(tmp_path: Path) -> None:
    with pytest.raises(CardDeclined, match="card declined for order-1") as declined:
        nightly_charges.test(**_params(tmp_path, decline=True))
    run = declined.value.orchestrator_run  # type: ignore[attr-defined]
    assert run.states["charge"] == "failed"
    assert len(run.attempts["charge"]) == 2  # its one retry was spent
    assert run.states["send_receipt"] == "upstream_failed"
    assert run["alert_finance"] == "finance alerted about order-1"  # one_failed
    assert run["close_books"] == 0  # all_done: ran anyway, nothing was charged
    assert run.state == RunState.SUCCESS  # the failure was handled downstream


# -- on a real stack: orch_stack, orch_client ----------------------------------------------

def test_a_run_on_real_workers(orch_client: Client, tmp_path: Path) -> None:
    run_id = orch_client.submit("nightly_charges", _params(tmp_path))
    run = orch_client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.attempt for a in run.tasks["fetch_rate"].attempts] == [1, 2, 3]
    assert orch_client.result(run_id, "close_books") == 1
    assert run.tasks["alert_finance"].state == "skipped"


def test_a_duplicated_message_charges_once(orch_stack: OrchStack, orch_client: Client,
                                           tmp_path: Path) -> None:
    ledger = str(tmp_path / "ledger.db")
    duplicate = orch_stack.deliver_twice("charge", dag="nightly_charges")
    run_id = orch_client.submit("nightly_charges", _params(tmp_path))
    run = orch_client.wait(run_id, timeout=WAIT_S)
    duplicate.wait(timeout=WAIT_S)  # the copy was delivered and handled
    assert duplicate.attempt == {"dag": "nightly_charges", "task": "charge", "run": run_id,
                                 "attempt": 1}
    assert run.state == RunState.SUCCESS
    assert count(ledger, "charges", run_id) == 1
    assert count(ledger, "executions", run_id) == 1  # the second delivery ran nothing
    assert len(run.tasks["charge"].attempts) == 1


def test_a_worker_killed_mid_charge_charges_once(orch_stack: OrchStack, orch_client: Client,
                                                 tmp_path: Path) -> None:
    ledger, hold = str(tmp_path / "ledger.db"), tmp_path / "go"
    run_id = orch_client.submit("nightly_charges", _params(tmp_path, hold=str(hold)))
    wait_until(lambda: count(ledger, "charges", run_id) == 1, WAIT_S, "the charge")
    killed = orch_stack.kill_worker(run_id, "charge")  # held after its side effect
    assert len(killed) == 1  # the worker running it, not the other one
    hold.touch()
    run = orch_client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.outcome for a in run.tasks["charge"].attempts] == [AttemptOutcome.LOST,
                                                                 AttemptOutcome.SUCCESS]
    assert count(ledger, "executions", run_id) == 2  # the body ran again...
    assert count(ledger, "charges", run_id) == 1  # ...and charged nothing more
    assert orch_client.result(run_id, "close_books") == 1


def test_the_broker_restarted_mid_run_loses_nothing(orch_stack: OrchStack,
                                                    orch_client: Client,
                                                    tmp_path: Path) -> None:
    ledger, hold = str(tmp_path / "ledger.db"), tmp_path / "go"
    run_id = orch_client.submit("nightly_charges", _params(tmp_path, hold=str(hold)))
    wait_until(lambda: count(ledger, "charges", run_id) == 1, WAIT_S, "the charge")
    orch_stack.restart_broker()  # every queued or unacknowledged message is gone
    hold.touch()
    run = orch_client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.outcome for a in run.tasks["charge"].attempts] == [AttemptOutcome.SUCCESS]
    assert count(ledger, "executions", run_id) == 1  # the workers kept running through it
    assert orch_client.result(run_id, "send_receipt") == "receipt for order-1: 11.0"
