"""The alerts outbox against real databases (SQLite and PostgreSQL): a notification row is
written by the transaction whose compare-and-set won the state change, a deadline is
closed by the run's final transaction or missed once, and a claimed notification is
fenced by its lease."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from orchestrator.model import notify, spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.store import Claim, RunStart, Store
from orchestrator.store.tables import deadlines, notifications

pytestmark = pytest.mark.integration

HOOK = {"url": "http://hooks.test/x"}


@pytest.fixture
def store(fresh_url: str) -> Iterator[Store]:
    """A database of each test's own: every coordinator delivers every notification of its
    database, and the shared tier's coordinators would take these (and claims here take
    whatever is due)."""
    s = Store(fresh_url)
    s.upgrade()
    yield s
    s.dispose()


def _dag(*, retries: int = 0, tasks: tuple[str, ...] = ("a",), **dag: Any) -> CompiledDag:
    return CompiledDag.of(spec.build({
        "id": f"obx_{uuid.uuid4().hex[:8]}", **dag,
        "tasks": [{"id": t, "kind": "shell", "command": "true", "retries": retries}
                  for t in tasks]}))


def _run(store: Store, dag: CompiledDag) -> str:
    run_id = uuid.uuid4().hex
    store.create_run(dag, run_id=run_id, params={})
    return run_id


def _claim(store: Store, run_id: str, task_id: str = "a", attempt: int = 1) -> Claim:
    claim = store.claim(run_id, task_id, attempt, worker="w", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    return claim


def _fail(store: Store, dag: CompiledDag, run_id: str, claim: Claim, attempt: int = 1,
          retry_in: float | None = None) -> Any:
    return store.fail(run_id, "a", attempt, error_type="ValueError", message="no luck",
                      traceback=None, retry_in=retry_in, p=dag.plan, token=claim.token)


def _events(store: Store, run_id: str) -> list[tuple[str, str]]:
    return sorted((n.event, n.channel) for n in store.notifications(run_id))


def test_a_failure_writes_one_row_per_rule_in_its_own_transaction(store: Store) -> None:
    dag = _dag(retries=1, notify=[
        {"on": ["task_retried", "task_failed", "run_failed"], "webhook": HOOK},
        {"on": ["run_failed"], "email": {"to": ["ops@example.com"]}}])
    run_id = _run(store, dag)
    change = _fail(store, dag, run_id, _claim(store, run_id), retry_in=0)
    assert change.notified == 1
    assert _events(store, run_id) == [("task_retried", "webhook")]
    change = _fail(store, dag, run_id, _claim(store, run_id, attempt=2), attempt=2)
    assert change.notified == 3 and change.run_state == RunState.FAILED
    rows = store.notifications(run_id)
    assert sorted((n.event, n.channel) for n in rows) == [
        ("run_failed", "email"), ("run_failed", "webhook"), ("task_failed", "webhook"),
        ("task_retried", "webhook")]
    failed = next(n for n in rows if n.event == "run_failed")
    assert failed.payload["task_id"] == "a" and "no luck" in failed.payload["error"]
    assert {n.state for n in rows} == {"pending"} and len({n.id for n in rows}) == 4


def test_a_duplicate_outcome_writes_nothing(store: Store) -> None:
    dag = _dag(notify=[{"on": ["task_failed", "run_failed"], "webhook": HOOK}])
    run_id = _run(store, dag)
    claim = _claim(store, run_id)
    assert _fail(store, dag, run_id, claim).notified == 2
    again = _fail(store, dag, run_id, claim)
    assert not again.applied and again.notified == 0
    assert len(store.notifications(run_id)) == 2


def test_racing_failures_of_one_attempt_write_one_set(store: Store) -> None:
    dag = _dag(notify=[{"on": ["task_failed", "run_failed"], "webhook": HOOK}])
    run_id = _run(store, dag)
    claim = _claim(store, run_id)
    barrier = threading.Barrier(6)

    def fail() -> None:
        barrier.wait()
        _fail(store, dag, run_id, claim)

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _events(store, run_id) == [("run_failed", "webhook"), ("task_failed", "webhook")]


def test_global_rules_apply_to_a_dag_without_any(store: Store) -> None:
    dag = _dag()
    assert dag.plan.alerts is None
    run_id = _run(store, dag)
    claim = _claim(store, run_id)
    saved = store.alert_rules
    store.alert_rules = (notify.Rule.model_validate({"on": ["run_succeeded"],
                                                     "webhook": HOOK}),)
    try:
        store.succeed(run_id, "a", 1, None, dag.plan, token=claim.token)
    finally:
        store.alert_rules = saved
    assert _events(store, run_id) == [("run_succeeded", "webhook")]


def test_a_dag_nobody_watches_writes_nothing(store: Store) -> None:
    dag = _dag()
    run_id = _run(store, dag)
    before = store.count_rows()["notifications"]
    claim = _claim(store, run_id)
    change = _fail(store, dag, run_id, claim)
    assert change.run_state == RunState.FAILED and change.notified == 0
    assert store.count_rows()["notifications"] == before


def _deadline(store: Store, run_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(deadlines).where(deadlines.c.run_id == run_id)).first()


def _due_now(store: Store, run_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(deadlines).where(deadlines.c.run_id == run_id).values(
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))


def test_a_run_that_ends_before_its_deadline_never_misses_it(store: Store) -> None:
    dag = _dag(deadline=3600, notify=[{"on": ["deadline_missed"], "webhook": HOOK}])
    run_id = _run(store, dag)
    assert _deadline(store, run_id).state == "open"
    _fail(store, dag, run_id, _claim(store, run_id))
    assert _deadline(store, run_id).state == "closed"
    _due_now(store, run_id)
    store.miss_deadlines()
    assert _deadline(store, run_id).state == "closed"
    assert store.notifications(run_id) == []


def test_a_missed_deadline_alerts_once_and_the_run_goes_on(store: Store) -> None:
    dag = _dag(deadline=3600, notify=[{"on": ["deadline_missed", "run_succeeded"],
                                       "webhook": HOOK}])
    run_id = _run(store, dag)
    _due_now(store, run_id)
    store.miss_deadlines()
    assert _deadline(store, run_id).state == "missed"
    store.miss_deadlines()
    assert _events(store, run_id) == [("deadline_missed", "webhook")]
    store.succeed(run_id, "a", 1, None, dag.plan, token=_claim(store, run_id).token)
    assert _events(store, run_id) == [("deadline_missed", "webhook"),
                                      ("run_succeeded", "webhook")]


def test_a_time_of_day_deadline_is_stored_in_the_dags_zone(store: Store) -> None:
    dag = _dag(deadline="06:00", timezone="America/New_York")
    run_id = _run(store, dag)
    due = _deadline(store, run_id).due_at
    local = due.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.second) == (6, 0, 0)
    assert 0 < (due - dt.datetime.now(dt.UTC)).total_seconds() <= 25 * 3600


def _pending(store: Store, dag: CompiledDag) -> str:
    run_id = _run(store, dag)
    _fail(store, dag, run_id, _claim(store, run_id))
    (row,) = store.notifications(run_id)
    return row.id


def _take(store: Store, notification_id: str, holder: str, lease: float = 30.0) -> Any:
    (out,) = store.claim_notifications(holder, limit=100, lease=lease)
    assert out.id == notification_id
    return out


def test_a_claim_is_fenced_by_its_lease(store: Store) -> None:
    dag = _dag(notify=[{"on": ["run_failed"], "webhook": HOOK}])
    nid = _pending(store, dag)
    first = _take(store, nid, "one", lease=30.0)
    assert all(o.id != nid for o in store.claim_notifications("two", limit=100, lease=30))
    # the first sender's lease runs out: another takes it, and the first records nothing
    with store.engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == nid).values(
            lease_until=time.time() - 1))
    second = _take(store, nid, "two")
    assert second.tries == 2 and second.token != first.token
    assert not store.finish_notification(first, delivered=True, status=200)
    assert store.finish_notification(second, delivered=True, status=200)
    (row,) = [n for n in store.notifications(second.run_id) if n.id == nid]
    assert row.state == "delivered" and row.tries == 2
    # each try is recorded as it went, the late one too (the receiver dedupes on the id)
    assert [(d.attempt, d.holder, d.outcome) for d in row.deliveries] == [
        (1, "one", "delivered"), (2, "two", "delivered")]


def test_a_failed_try_is_due_again_then_given_up(store: Store) -> None:
    dag = _dag(notify=[{"on": ["run_failed"], "webhook": HOOK}])
    nid = _pending(store, dag)
    out = _take(store, nid, "one")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert store.finish_notification(out, delivered=False, status=500, detail="500",
                                     retry_at=later)
    assert all(o.id != nid for o in store.claim_notifications("one", limit=100, lease=30))
    with store.engine.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.id == nid).values(
            next_at=dt.datetime.now(dt.UTC)))
    out = _take(store, nid, "one")
    assert store.finish_notification(out, delivered=False, status=500, detail="500 again")
    (row,) = [n for n in store.notifications(out.run_id) if n.id == nid]
    assert (row.state, row.tries, row.last_error) == ("failed", 2, "500 again")
    assert [(d.outcome, d.status) for d in row.deliveries] == [("failed", 500),
                                                               ("failed", 500)]


def test_a_run_the_coordinator_times_out_alerts_with_the_reason(store: Store) -> None:
    dag = _dag(notify=[{"on": ["run_failed", "task_failed"], "webhook": HOOK}])
    run_id = _run(store, dag)
    _claim(store, run_id)
    change = store.cancel(run_id, state=RunState.FAILED,
                          reason="the run exceeded its DAG's timeout")
    assert change.notified == 1
    (row,) = store.notifications(run_id)
    assert row.event == "run_failed" and row.payload["task_id"] is None
    assert row.payload["error"] == "the run exceeded its DAG's timeout"


def test_a_cancelled_run_alerts_nobody(store: Store) -> None:
    dag = _dag(notify=[{"on": ["run_failed", "run_succeeded", "task_failed"],
                        "webhook": HOOK}])
    run_id = _run(store, dag)
    assert store.cancel(run_id).notified == 0
    assert store.notifications(run_id) == []


def test_a_queued_runs_deadline_counts_from_when_it_starts(store: Store) -> None:
    dag = _dag(deadline=3600, max_active_runs=1,
               notify=[{"on": ["deadline_missed"], "webhook": HOOK}])
    first = _run(store, dag)
    waiting = uuid.uuid4().hex
    store.create_run(dag, run_id=waiting, params={}, start=RunStart(queued=True))
    assert _deadline(store, first).state == "open"
    assert _deadline(store, waiting) is None  # not started: no clock runs yet
    token = _claim(store, first).token
    started = dt.datetime.now(dt.UTC)
    change = store.succeed(first, "a", 1, None, dag.plan, token=token)
    assert change.started_runs == [waiting]
    assert _deadline(store, first).state == "closed"
    opened = _deadline(store, waiting)
    assert opened.state == "open"
    assert opened.due_at >= started + dt.timedelta(seconds=3600)  # from its start
