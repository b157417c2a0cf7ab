"""The coordinator's reconciler: work lost with the broker or with a worker comes back."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.client import Client
from orchestrator.coordinator.reconciler import Reconciler
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import Stalled, Store
from orchestrator.store.tables import task_instances
from orchestrator.wiring import Wiring
from tests import recording_hooks
from tests.hook_checks import check_each_transition_once
from tests.support import Ledger, compiled_of, free_port, fresh_database, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]
WAIT_S = 90
HOOK = "tests.recording_hooks:Recorder"



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


def test_a_worker_with_free_slots_outlives_a_broker_restart(
        own_broker: EmbeddedBroker, database_url: str, ledger: Ledger,
        tmp_path: Path) -> None:
    """A worker holding a running task (acked late) and a free slot, when the broker dies:
    kombu gives the unacked message back on the way out, through a connection that is
    gone, and without the guard (transport/kombu_guard) the worker exits 'Unrecoverable
    error: AttributeError'. With it the same process reconnects and goes on."""
    assert own_broker.url is not None and own_broker.server_pid is not None
    settings = make_settings(own_broker.url, database_url, requeue_after=2.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        worker = stack.add_worker("only", concurrency=2)
        busy = client.submit("gateonly")
        wait_until(lambda: ledger.of(busy, "gated"), what="the gated task to start")

        os.kill(own_broker.server_pid, signal.SIGKILL)
        own_broker.stop()
        own_broker.start()  # same port, empty
        ledger.open_gate(busy, "go")

        assert client.wait(busy, timeout=WAIT_S).state == RunState.SUCCESS
        after = client.submit("chain20")  # taken from the restarted broker
        assert client.wait(after, timeout=WAIT_S).state == RunState.SUCCESS
        assert worker.proc.poll() is None, "the worker exited"
        workers = {a.worker for run_id in (busy, after)
                   for ti in client.get_run(run_id).tasks.values() for a in ti.attempts}
    assert len(workers) == 1  # one process did all of it
    log = (tmp_path / "only.log").read_text(errors="replace")
    assert "Unrecoverable error" not in log


def test_mapped_instances_lost_with_the_broker_are_sent_again(
        own_broker: EmbeddedBroker, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    assert own_broker.url is not None and own_broker.server_pid is not None
    settings = make_settings(own_broker.url, database_url, requeue_after=2.0,
                             reconcile_interval=0.3)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        stack.add_worker("only", concurrency=1)
        run_id = client.submit("mapbound", {"n": 4})  # 2 in flight, 1 worker slot
        wait_until(lambda: len(ledger.entries(run_id)) == 1, what="one instance to start")
        tasks = client.get_run(run_id).tasks
        waiting = [t for t in tasks.values() if t.map_parent and t.state == TaskState.QUEUED]
        assert len(waiting) == 1  # its message waits in the broker

        killed_at = dt.datetime.now(dt.UTC)
        os.kill(own_broker.server_pid, signal.SIGKILL)  # the message dies with it
        own_broker.stop()
        own_broker.start()  # same port, empty
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "total")["xs"] == list(range(4))
    lost = run.tasks[waiting[0].task_id]
    assert lost.queued_at is not None and lost.queued_at > killed_at  # the reconciler's
    assert [a.attempt for a in lost.attempts] == [1]
    # the lost instance was sent again and ran once; nothing ran twice
    assert sorted(e["task"] for e in ledger.entries(run_id)) == [
        "held[0]", "held[1]", "held[2]", "held[3]", "total"]


def test_a_lost_worker_is_replaced_before_the_visibility_timeout(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    # Redelivery by the broker would take an hour here; only the reconciler can finish.
    settings = make_settings(broker_url, database_url, visibility_timeout=3600.0,
                             reconcile_interval=0.3, hooks=HOOK)
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
    # the hooks saw the takeover and each resend the coordinator logged, once each
    events = recording_hooks.events(run_id)
    check_each_transition_once(run, events)
    lost = [e for e in events if e["hook"] == "attempt_finished" and e["outcome"] == "lost"]
    assert [(e["task_id"], e["attempt"]) for e in lost] == [("gated", 1)]
    assert _resends_seen(events, "gated") == _resends_logged(tmp_path, run_id,
                                                             "killme.gated") >= 1


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


def _queued_run(store: Store, tasks: int = 1) -> str:
    run_id = uuid.uuid4().hex
    store.create_run(compiled_of({f"t{i}": [] for i in range(tasks)}, dag_id="d"),
                     run_id=run_id, params={})
    return run_id


def _take(store: Store, cutoff: dt.datetime) -> list[Stalled]:
    return store.take_stalled(queued_before=cutoff, lost_before=cutoff)


def test_racing_coordinators_decide_a_resend_once(database_url: str) -> None:
    store = Store(database_url)
    other = Store(database_url)
    run_id = _queued_run(store)
    (row,) = [t for t in store.get_run(run_id).tasks.values()]
    assert row.queued_at is not None
    cutoff = row.queued_at + dt.timedelta(microseconds=1)  # it looks stalled from here
    taken = [s for s in _take(store, cutoff) if s.run_id == run_id]
    assert [(s.task_id, s.attempt, s.state) for s in taken] == [("t0", 1, TaskState.QUEUED)]
    # taking it moved queued_at past the cutoff: nobody takes it again
    assert not [s for s in _take(other, cutoff) if s.run_id == run_id]
    assert not [s for s in _take(store, cutoff) if s.run_id == run_id]
    other.dispose()
    store.dispose()


@pytest.mark.postgres
def test_coordinators_skip_the_rows_another_one_holds(postgres_url: str,
                                                     tmp_path: Path) -> None:
    # a database of its own: in the shared one, other tests' queued rows can fill the
    # batch of 1000 that one pass takes, leaving 'free' for the next pass
    with fresh_database(postgres_url, tmp_path) as url:
        store = Store(url)
        store.upgrade()
        other = Store(url)
        held, free = _queued_run(store), _queued_run(store)
        cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        with other.engine.connect() as conn, conn.begin():
            # another coordinator is in the middle of taking 'held': its row is locked
            conn.execute(sa.select(task_instances.c.task_id).where(
                task_instances.c.run_id == held).with_for_update())
            mine = {s.run_id for s in _take(store, cutoff)}  # returns without waiting
        assert free in mine and held not in mine
        other.dispose()
        store.dispose()


def test_one_reconciler_at_a_time_holds_the_lease(database_url: str) -> None:
    store = Store(database_url)
    name = f"lease-{uuid.uuid4().hex[:8]}"
    assert store.lead(name, "a", ttl=30)
    assert not store.lead(name, "b", ttl=30)
    assert store.lead(name, "a", ttl=30)  # renewed by its holder
    later = time.time() + 31  # a has not renewed it for longer than its ttl
    assert store.lead(name, "b", ttl=30, wall=later)
    assert not store.lead(name, "a", ttl=30, wall=later)
    store.release(name, "b")
    assert store.lead(name, "a", ttl=30)  # released: no need to wait for it to expire
    store.dispose()


def test_on_sqlite_only_the_lease_holder_reconciles(tmp_path: Path) -> None:
    settings = make_settings("redis://127.0.0.1:1/0", f"sqlite:///{tmp_path / 's.db'}")
    with Wiring(settings, check_schema=False) as wiring:
        wiring.store.upgrade()
        first, second = (Reconciler(settings, wiring.outcomes, name=n)
                         for n in ("first", "second"))
        assert first.leads() and not second.leads()
        first.stop()
        assert second.leads() and not first.leads()


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


def test_a_task_past_its_timeout_whose_worker_is_gone_is_failed_by_the_coordinator(
        broker_url: str, database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, reconcile_interval=0.2,
                             time_limit_grace=0.5, hooks=HOOK)
    with LocalStack(settings, workers=0, coordinator=True, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        victim = stack.add_worker("victim", concurrency=1)
        run_id = client.submit("hangs")
        wait_until(lambda: ledger.of(run_id, "hang"), what="'hang' to start")
        victim.kill()  # no worker is left to time it out
        run = client.wait(run_id, timeout=WAIT_S)
        coordinator = stack.coordinators[0].pid
    assert run.state == RunState.FAILED
    hang = run.tasks["hang"]
    assert hang.state == TaskState.FAILED
    assert hang.error is not None and hang.error.startswith("TaskTimeout: exceeded its timeout")
    assert "the coordinator did" in hang.error
    assert [(a.outcome, a.error_type) for a in hang.attempts] == [
        (AttemptOutcome.FAILED, "TaskTimeout")]
    assert run.tasks["after_hang"].state == TaskState.UPSTREAM_FAILED
    assert len(ledger.of(run_id, "hang")) == 1
    # the hooks saw the timeout once, from the coordinator, and each resend it logged
    events = recording_hooks.events(run_id)
    check_each_transition_once(run, events)
    (timed_out,) = [e for e in events if e["hook"] == "attempt_finished"]
    assert (timed_out["task_id"], timed_out["pid"]) == ("hang", coordinator)
    assert _resends_seen(events, "hang") == _resends_logged(tmp_path, run_id, "hangs.hang")


def _resends_logged(log_dir: Path, run_id: str, task_id: str) -> int:
    line = f"resending {task_id} of run {run_id} "
    return sum(f.read_text(errors="replace").count(line) for f in log_dir.glob("coordinator-*.log"))


def _resends_seen(events: list[dict[str, object]], task_id: str) -> int:
    return sum(1 for e in events if e["hook"] == "task_queued" and e["reason"] == "resend"
               and e["task_id"] == task_id)
