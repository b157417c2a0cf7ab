"""Sensors wait in the database between pokes: no worker slot held, no countdown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import Ledger, make_settings, wait_until

pytestmark = pytest.mark.integration

WAIT_S = 60


@pytest.fixture(scope="module")
def sensor_client(broker_url: str, database_url: str, ledger_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """One worker with one slot and a coordinator passing (and waking sensors) every 0.1 s."""
    settings = make_settings(broker_url, database_url, reconcile_interval=0.1,
                             schedule_interval=0.1)
    with LocalStack(settings, workers=1, concurrency=1, coordinator=True,
                    log_dir=str(tmp_path_factory.mktemp("sensor-logs"))) as stack, \
            Client(stack.settings) as client:
        yield client


def _state(client: Client, run_id: str, task_id: str) -> TaskState:
    return client.get_run(run_id).tasks[task_id].state


def test_a_sensor_pokes_until_the_file_appears(sensor_client: Client, ledger: Ledger) -> None:
    client = sensor_client
    run_id = client.submit("sensor_file")
    wait_until(lambda: len(ledger.of(run_id, "file_there")) >= 3, timeout=WAIT_S,
               what="three pokes")
    assert _state(client, run_id, "file_there") in (TaskState.UP_FOR_RESCHEDULE,
                                                    TaskState.QUEUED, TaskState.RUNNING)
    ledger.open_gate(run_id, "file")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS, {t: (x.state, x.error) for t, x in run.tasks.items()}
    sensor = run.tasks["file_there"]
    outcomes = [a.outcome for a in sensor.attempts]
    assert outcomes[-1] == AttemptOutcome.SUCCESS
    assert set(outcomes[:-1]) == {AttemptOutcome.RESCHEDULED} and len(outcomes) >= 4
    # every poke is its own attempt, and the task's budget never ran out (retries=0)
    assert [a.attempt for a in sensor.attempts] == list(range(1, len(outcomes) + 1))
    assert len(ledger.of(run_id, "file_there")) == len(outcomes)
    assert client.result(run_id, "after") == "after found"


def test_a_waiting_sensor_holds_no_worker_slot(sensor_client: Client, ledger: Ledger) -> None:
    client = sensor_client
    run_id = client.submit("sensor_beside")
    # one slot: 'beside' runs to its end while the sensor, not done, waits between pokes
    wait_until(lambda: _state(client, run_id, "beside") == TaskState.SUCCESS,
               timeout=WAIT_S, what="'beside' to succeed")
    assert _state(client, run_id, "first_poke_marks") != TaskState.SUCCESS
    assert ledger.of(run_id, "first_poke_marks")
    ledger.open_gate(run_id, "file")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS


def test_a_sensor_past_its_timeout_fails(sensor_client: Client, ledger: Ledger) -> None:
    run = sensor_client.wait(sensor_client.submit("sensor_timeout"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    never = run.tasks["never"]
    assert never.state == TaskState.FAILED
    last = never.attempts[-1]
    assert (last.outcome, last.error_type) == (AttemptOutcome.FAILED, "SensorTimeout")
    assert {a.outcome for a in never.attempts[:-1]} == {AttemptOutcome.RESCHEDULED}
    assert len(never.attempts) >= 3  # retries=0, yet many pokes
    assert run.tasks["after"].state == TaskState.UPSTREAM_FAILED


def test_cancel_during_the_wait_cancels_the_sensor(sensor_client: Client,
                                                   ledger: Ledger) -> None:
    client = sensor_client
    run_id = client.submit("sensor_file")
    wait_until(lambda: _state(client, run_id, "file_there") == TaskState.UP_FOR_RESCHEDULE,
               timeout=WAIT_S, what="the sensor to wait")
    client.cancel(run_id)
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.CANCELLED
    assert run.tasks["file_there"].state == TaskState.CANCELLED
