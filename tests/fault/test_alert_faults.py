"""The alerts outbox under faults, counting what a real receiver on 127.0.0.1 got: duplicate
messages, a worker SIGKILLed mid-task, a coordinator SIGKILLed mid-send, two coordinators
at once, a receiver that fails and one that never answers.

The module has a broker and a database of its own (every coordinator delivers every
notification of its database, and other tests' coordinators lack this receiver's
address). Each test starts the coordinators it needs, with its own alert settings and
its receiver's address in their environment, and stops them by PID; it ends only once
every notification of its runs is delivered or given up, so the next test starts with
an outbox at rest.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.processes import spawn, terminate
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.records import Notification
from orchestrator.model.states import AttemptOutcome, RunState
from orchestrator.store import Store
from tests.receivers import Received, Receiver
from tests.support import Ledger, free_port, fresh_database, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SECRET = "afault-signing-secret"
WAIT_S = 90
VICTIM_QUEUE = "afault_victim"  # tests/dags/tdag_alert_faults.py
EVENT_ID = "X-Orchestrator-Event-Id"


@pytest.fixture(scope="module")
def stack(database_url: str, ledger_dir: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[LocalStack]:
    """Workers (4 pool processes, so a duplicate runs beside its original) on a broker
    and a fresh database of this module's; no coordinator (each test starts its own)."""
    folder = tmp_path_factory.mktemp("alert-faults")
    with EmbeddedBroker(port=free_port()) as broker, \
            fresh_database(database_url, folder) as url, \
            LocalStack(make_settings(broker, url, reconcile_interval=0.3,
                                     time_limit_grace=1.0, alert_backoff=0.2,
                                     alert_timeout=2.0),
                       workers=1, concurrency=4, log_dir=str(folder)) as s:
        yield s


class Coordinators:
    """``orchestrator coordinator`` processes of one test, each with the test's alert
    settings and receiver in its environment; killed or stopped by PID."""

    def __init__(self, stack: LocalStack, log_dir: Path) -> None:
        self.stack = stack
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.env: dict[str, str] = {}
        self.overrides: dict[str, Any] = {}

    def configure(self, receiver: Receiver, **overrides: Any) -> None:
        """``overrides`` like make_settings' (``alert_timeout=1.0``)."""
        self.env = {"AFAULT_HOOK_URL": receiver.url, "AFAULT_HOOK_SECRET": SECRET}
        self.overrides = {f"ORCH_{k.upper()}": v for k, v in overrides.items()}

    def start(self) -> subprocess.Popen[bytes]:
        """One more coordinator, returned once its notifier runs (it said so in its log)."""
        assert self.env, "configure() first"
        log = self.log_dir / f"coordinator-{len(self.procs)}.log"
        proc = spawn(["orchestrator", "coordinator"], self.stack.settings.with_env(
            **self.overrides), log_path=str(log), extra_env=self.env)
        self.procs.append(proc)
        self.logs.append(log)

        def up() -> bool:
            assert proc.poll() is None, f"the coordinator exited: {log.read_text()}"
            return log.exists() and "reconciling every" in log.read_text(errors="replace")

        wait_until(up, 60, "the coordinator to start")
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            terminate(proc)


@pytest.fixture
def coordinators(stack: LocalStack, tmp_path: Path) -> Iterator[Coordinators]:
    c = Coordinators(stack, tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def client(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.settings) as c:
        yield c


@pytest.fixture
def store(stack: LocalStack) -> Iterator[Store]:
    s = Store(stack.settings.database.url)
    yield s
    s.dispose()


def settled(store: Store, run_ids: list[str], per_run: int) -> dict[str, list[Notification]]:
    """Each run's notifications once there are ``per_run`` of each and every one is
    delivered or given up (more than ``per_run`` is a test failure, seen by the caller)."""
    def done() -> dict[str, list[Notification]] | None:
        rows = {r: store.notifications(r) for r in run_ids}
        if all(len(v) >= per_run and all(n.state in ("delivered", "failed") for n in v)
               for v in rows.values()):
            return rows
        return None

    return wait_until(done, WAIT_S, "every notification delivered or given up")  # type: ignore[no-any-return]


def events(got: list[Received]) -> list[str]:
    return sorted(g.json["event"] for g in got)


def check_signed(got: list[Received]) -> None:
    for g in got:
        want = hmac.new(SECRET.encode(), g.body, hashlib.sha256).hexdigest()
        assert g.headers["X-Orchestrator-Signature"] == f"sha256={want}"
        assert g.headers[EVENT_ID] == g.json["id"]


def one_alert_per_event(receiver: Receiver, rows: list[Notification], run_id: str,
                        want: list[str]) -> None:
    """The receiver got each event once, under its outbox row's id, sent once."""
    got = receiver.of_run(run_id)
    assert events(got) == sorted(want), [(g.json["event"], g.headers[EVENT_ID]) for g in got]
    assert sorted(n.event for n in rows) == sorted(want)
    assert {g.headers[EVENT_ID] for g in got} == {n.id for n in rows}
    for n in rows:
        assert n.state == "delivered" and n.tries == 1, n
        assert [(d.outcome, d.status) for d in n.deliveries] == [("delivered", 200)], n
    check_signed(got)


def broker_idle(stack: LocalStack) -> None:
    """Every message sent so far (duplicates, deferred ones) delivered and acknowledged."""
    r = redis.Redis.from_url(stack.settings.broker.url or "")
    queue = stack.settings.worker.default_queue
    try:
        wait_until(lambda: r.llen(queue) == 0 and r.hlen("unacked") == 0, WAIT_S,
                   "every message to be delivered and dropped")
    finally:
        r.close()


# -- 1. duplicate messages --------------------------------------------------------------


def test_every_message_into_a_failing_task_delivered_twice_alerts_once(
        stack: LocalStack, coordinators: Coordinators, client: Client, store: Store,
        ledger: Ledger) -> None:
    with Receiver() as hook:
        coordinators.configure(hook)
        coordinators.start()
        run_id = client.submit("afault_duplicated")
        dag = client.dag("afault_duplicated")
        again = client._wiring.dispatcher
        for attempt in (1, 2):
            wait_until(lambda a=attempt: [e for e in ledger.of(run_id, "flaky")  # type: ignore[misc]
                                          if e["attempt"] == a],
                       WAIT_S, f"attempt {attempt} of 'flaky' to start")
            # the broker delivers the running attempt's message again (and the older one)
            again.send(dag, run_id, [("flaky", a) for a in range(1, attempt + 1)])
            ledger.open_gate(run_id, f"go{attempt}")
        run = client.wait(run_id, timeout=WAIT_S)
        assert run.state == RunState.FAILED
        # and every message once more after the run ended, the downstream task's too
        again.send(dag, run_id, [("flaky", 1), ("flaky", 2), ("after", 1)])
        broker_idle(stack)
        rows = settled(store, [run_id], 3)[run_id]
        one_alert_per_event(hook, rows, run_id, ["task_retried", "task_failed", "run_failed"])
        final = client.get_run(run_id)
    assert [a.outcome for a in final.tasks["flaky"].attempts] == [AttemptOutcome.FAILED] * 2
    assert [e["attempt"] for e in ledger.of(run_id, "flaky")] == [1, 2]  # each ran once
    assert ledger.of(run_id, "after") == []


# -- 2. a worker SIGKILLed, the task failed by the reconciler ----------------------------


def test_a_sigkilled_task_failed_by_the_reconciler_at_its_timeout_alerts_once(
        stack: LocalStack, coordinators: Coordinators, client: Client, store: Store,
        ledger: Ledger) -> None:
    with Receiver() as hook:
        coordinators.configure(hook)
        coordinators.start()
        victim = stack.add_worker(f"victim-{os.getpid()}", queues=[VICTIM_QUEUE],
                                  concurrency=1)
        run_id = client.submit("afault_timed_out")
        wait_until(lambda: ledger.of(run_id, "outlived"), WAIT_S, "'outlived' to start")
        victim.kill()  # SIGKILL, well before its 4 s timeout: no failure is ever reported
        run = client.wait(run_id, timeout=WAIT_S)
        assert run.state == RunState.FAILED
        (attempt,) = run.tasks["outlived"].attempts
        assert attempt.error_type == "TaskTimeout"
        assert "the coordinator did" in (attempt.error_message or "")
        rows = settled(store, [run_id], 2)[run_id]
        one_alert_per_event(hook, rows, run_id, ["task_failed", "run_failed"])
        failed = next(g.json for g in hook.of_run(run_id) if g.json["event"] == "task_failed")
    assert failed["task_id"] == "outlived" and "TaskTimeout" in failed["error"]


def test_a_task_whose_workers_are_sigkilled_fails_worker_lost_and_alerts_once(
        stack: LocalStack, coordinators: Coordinators, client: Client, store: Store,
        ledger: Ledger) -> None:
    with Receiver() as hook:
        coordinators.configure(hook)
        coordinators.start()
        run_id = client.submit("afault_worker_lost")
        for n in (1, 2, 3):  # the worker-loss limit: the fourth claim gives up
            victim = stack.add_worker(f"victim{n}-{os.getpid()}", queues=[VICTIM_QUEUE],
                                      concurrency=1)
            wait_until(lambda n=n: len(ledger.of(run_id, "held")) == n,  # type: ignore[misc]
                       WAIT_S, f"attempt {n} of 'held' to start")
            victim.kill()  # the reconciler sees its lease run out and sends it again
        stack.add_worker(f"victim4-{os.getpid()}", queues=[VICTIM_QUEUE], concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
        assert run.state == RunState.FAILED
        t = run.tasks["held"]
        assert [a.outcome for a in t.attempts] == [AttemptOutcome.LOST] * 2 + [
            AttemptOutcome.FAILED]
        assert t.attempts[-1].error_type == "WorkerLost"
        rows = settled(store, [run_id], 2)[run_id]
        one_alert_per_event(hook, rows, run_id, ["task_failed", "run_failed"])
    r = redis.Redis.from_url(stack.settings.broker.url or "")
    r.delete(VICTIM_QUEUE)  # the resends nobody took: no later test's worker reads them
    r.close()


# -- 3. a coordinator SIGKILLed mid-send ------------------------------------------------


def test_a_coordinator_killed_mid_send_the_alert_still_arrives_with_one_event_id(
        coordinators: Coordinators, client: Client, store: Store) -> None:
    # The first request is held unanswered; the coordinator is killed while it waits
    # (well within its 3 s timeout), so its try never ends; the next one's lease is
    # 3 * 3 + 5 s.
    with Receiver(hang_first=1) as hook:
        coordinators.configure(hook, alert_timeout=3.0)
        first = coordinators.start()
        run_id = client.submit("afault_one_alert")
        wait_until(lambda: hook.of_run(run_id), WAIT_S, "the first try to reach the receiver")
        coordinators.kill(first)
        (sending,) = store.notifications(run_id)
        assert sending.state == "sending" and sending.tries == 1
        coordinators.start()
        (row,) = settled(store, [run_id], 1)[run_id]
        got = hook.of_run(run_id)
    assert len(got) >= 2
    assert {g.headers[EVENT_ID] for g in got} == {row.id}  # the receiver can tell
    assert len({g.body for g in got}) == 1  # the same alert, byte for byte
    check_signed(got)
    assert row.state == "delivered" and row.tries == len(got) >= 2
    cut, *rest = row.deliveries
    assert (cut.outcome, cut.finished_at) == (None, None)
    assert [(d.outcome, d.status) for d in rest][-1] == ("delivered", 200)
    assert cut.holder != rest[-1].holder


# -- 4. two coordinators ----------------------------------------------------------------


def test_two_coordinators_send_one_alert_per_event(
        coordinators: Coordinators, client: Client, store: Store) -> None:
    with Receiver() as hook:
        coordinators.configure(hook)
        coordinators.start()
        coordinators.start()
        # many failures committed at once, both notifiers woken by each
        run_ids = [client.submit("afault_fails") for _ in range(12)]
        for r in run_ids:
            assert client.wait(r, timeout=WAIT_S).state == RunState.FAILED
        rows = settled(store, run_ids, 2)
        for r in run_ids:
            one_alert_per_event(hook, rows[r], r, ["task_failed", "run_failed"])
        assert len(hook.got) == 2 * len(run_ids)
    holders = Counter(n.deliveries[0].holder for v in rows.values() for n in v)
    print(f"deliveries by coordinator: {dict(holders)}")


# -- 5. a receiver that fails ----------------------------------------------------------


def test_a_receiver_answering_500_three_times_gets_it_on_the_fourth_try(
        coordinators: Coordinators, client: Client, store: Store) -> None:
    with Receiver(answers=[500, 500, 500]) as hook:
        coordinators.configure(hook, alert_backoff=1.0, alert_max_tries=6)
        coordinators.start()
        run_id = client.submit("afault_one_alert")
        (row,) = settled(store, [run_id], 1)[run_id]
        got = hook.of_run(run_id)
    assert len(got) == 4
    assert {g.headers[EVENT_ID] for g in got} == {row.id}
    check_signed(got)
    assert row.state == "delivered" and row.tries == 4
    assert [d.attempt for d in row.deliveries] == [1, 2, 3, 4]
    assert [(d.outcome, d.status) for d in row.deliveries] == [
        ("failed", 500), ("failed", 500), ("failed", 500), ("delivered", 200)]
    # each try waited out a backoff that doubles: 1, 2, 4 s (longer than the notifier's
    # 1 s interval, so a backoff that did not double would show)
    starts = [d.started_at for d in row.deliveries]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(gap >= 2 ** i for i, gap in enumerate(gaps)), gaps


# -- 6. a receiver that never answers ------------------------------------------------------


def test_a_receiver_that_never_answers_is_given_up_after_the_configured_tries(
        coordinators: Coordinators, client: Client, store: Store) -> None:
    with Receiver(hang=True) as hook:
        coordinators.configure(hook, alert_timeout=0.5, alert_max_tries=3,
                               alert_backoff=0.2)
        coordinators.start()
        run_id = client.submit("afault_one_alert")
        (row,) = settled(store, [run_id], 1)[run_id]
        got = hook.of_run(run_id)
    assert row.state == "failed" and row.tries == 3 and row.delivered_at is None
    assert [d.attempt for d in row.deliveries] == [1, 2, 3]
    for d in row.deliveries:
        assert d.outcome == "failed" and d.status is None and d.finished_at is not None
        assert "no answer" in (d.detail or "") and "Timeout" in (d.detail or "")
        assert (d.finished_at - d.started_at).total_seconds() >= 0.5
    assert "no answer" in (row.last_error or "")
    assert len(got) == 3 and {g.headers[EVENT_ID] for g in got} == {row.id}
