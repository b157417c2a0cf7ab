"""The coordinator's reconciler: work lost with the broker or with a worker comes back."""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.broker import EmbeddedBroker
from orchestrator.client import Client
from orchestrator.stack import LocalStack
from orchestrator.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import Stalled, Store
from tests.conftest import Ledger, free_port, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 90



@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


def test_broker_restarted_empty_mid_run(own_broker: EmbeddedBroker, database_url: str,
                                        ledger: Ledger, tmp_path: Path) -> None:
    assert own_broker.url is not None and own_broker.server_pid is not None
    settings = make_settings(own_broker.url, database_url, requeue_after=2.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        stack.add_worker("only", concurrency=1)
        busy = client.submit("gateonly")  # holds the only worker slot
        wait_until(lambda: ledger.of(busy, "gated"), what="the gated task to start")
        waiting = client.submit("chain20")  # its first message waits in the broker
        assert client.get_run(waiting).tasks["inc"].state == TaskState.QUEUED

        os.kill(own_broker.server_pid, signal.SIGKILL)  # the queued message dies with it
        own_broker.stop()
        own_broker.start()  # same port, empty: no persistence
        ledger.open_gate(busy, "go")

        assert client.wait(busy, timeout=WAIT_S).state == RunState.SUCCESS
        run = client.wait(waiting, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(waiting, "inc__19") == 20
    # every link ran exactly once: the resend did not duplicate work
    assert sorted(e["task"] for e in ledger.entries(waiting)) == sorted(run.tasks)


def test_a_lost_worker_is_replaced_before_the_visibility_timeout(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    # Redelivery by the broker would take an hour here; only the reconciler can finish.
    settings = make_settings(broker_url, database_url, visibility_timeout=3600.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        victim = stack.add_worker("victim", concurrency=1)
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        victim.kill()
        ledger.open_gate(run_id, "go")
        stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert [a.outcome for a in run.tasks["gated"].attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    assert [len(ledger.of(run_id, t)) for t in ("first", "gated", "last")] == [1, 2, 1]


def test_mapped_instances_lost_with_their_worker_run_again(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, visibility_timeout=3600.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        victim = stack.add_worker("victim", concurrency=2)
        run_id = client.submit("mapbound", {"n": 5})  # at most 2 instances in flight
        wait_until(lambda: len(ledger.entries(run_id)) == 2, what="two instances to start")
        victim.kill()
        ledger.open_gate(run_id, "go")
        stack.add_worker("rescuer", concurrency=2)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == list(range(5))
    lost = {e["task"] for e in ledger.entries(run_id) if e["attempt"] == 1
            and run.tasks[e["task"]].attempt == 2}
    assert len(lost) == 2
    for t in lost:
        assert [a.outcome for a in run.tasks[t].attempts] == [
            AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    # each instance succeeded once; only the two lost with the worker ran twice
    runs_of = {f"held[{i}]": len(ledger.of(run_id, f"held[{i}]")) for i in range(5)}
    assert runs_of == {t: 2 if t in lost else 1 for t in runs_of}
    assert len(ledger.of(run_id, "total")) == 1


def test_racing_coordinators_decide_a_resend_once(database_url: str) -> None:
    store = Store(database_url)
    run_id = uuid.uuid4().hex
    store.create_run(run_id=run_id, dag_id="d", params={}, upstream={"a": []},
                     max_attempts={"a": 1})
    old = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    (stalled,) = [s for s in store.stalled(queued_before=old, lost_before=old)
                  if s.run_id == run_id]
    other = Store(database_url, migrate=False)
    assert [store.mark_resent(stalled), other.mark_resent(stalled)] == [True, False]
    again = Stalled(**{**stalled.__dict__})
    assert not store.mark_resent(again)  # the first decision moved queued_at on
    other.dispose()
    store.dispose()


def test_two_coordinators_one_killed_mid_run(broker_url: str, database_url: str,
                                             ledger: Ledger, tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, visibility_timeout=3600.0,
                             reconcile_interval=0.2)
    with LocalStack(settings, workers=0, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        doomed = stack.start_coordinator()
        stack.start_coordinator()
        victim = stack.add_worker("victim", concurrency=1)
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        victim.kill()
        doomed.kill()  # SIGKILL: the survivor must carry on alone
        ledger.open_gate(run_id, "go")
        stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    # no duplicate resend became a duplicate execution
    assert [len(ledger.of(run_id, t)) for t in ("first", "gated", "last")] == [1, 2, 1]
    assert [a.outcome for a in run.tasks["gated"].attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.SUCCESS]


def test_a_run_past_its_timeout_is_failed_by_the_coordinator(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, reconcile_interval=0.2)
    with LocalStack(settings, workers=1, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        run_id = client.submit("slowrun")
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    assert run.tasks["gated"].state == TaskState.CANCELLED
    assert run.tasks["gated"].error == "the run exceeded its DAG's timeout"
    assert run.tasks["after"].state == TaskState.CANCELLED
    assert ledger.of(run_id, "gated") and not ledger.of(run_id, "after")
