"""The metrics snapshot at the store, on SQLite and PostgreSQL: the reconciler's resends
and takeovers, which attempts are hand-offs, queues from the DAG version, durations to
the microsecond. Each test has a database of its own: the reconciler's take_stalled
takes every stalled task of a database, and the shared one holds other tests' runs."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import AttemptOutcome
from orchestrator.store import Claim, Store

pytestmark = pytest.mark.integration
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


@pytest.fixture
def store(fresh_url: str) -> Iterator[Store]:
    s = Store(fresh_url)
    s.upgrade()
    yield s
    s.dispose()


def _dag(dag_id: str, queue: str | None = None) -> CompiledDag:
    """a -> b (b on ``queue``)."""
    return CompiledDag.of(spec.build({"id": dag_id, "tasks": [
        {"id": "a", "kind": "shell", "command": "true"},
        {"id": "b", "kind": "shell", "command": "true", "upstream": ["a"], "queue": queue}]}))


def _claim(store: Store, run_id: str, task_id: str, attempt: int = 1,
           lease: float = 30.0) -> Claim:
    c = store.claim(run_id, task_id, attempt, worker="w", pid=1, lease_seconds=lease,
                    data_from=(), max_lost=3)
    assert isinstance(c, Claim)
    return c


def _run(store: Store, dag: CompiledDag) -> str:
    run_id = uuid.uuid4().hex
    store.create_run(dag, run_id=run_id, params={})
    return run_id


def test_a_released_child_is_a_hand_off_timed_to_the_microsecond(store: Store) -> None:
    dag = _dag("m_handoff", queue="special")
    run_id = _run(store, dag)
    a = _claim(store, run_id, "a")
    store.succeed(run_id, "a", 1, None, dag.plan, token=a.token)
    b = _claim(store, run_id, "b")
    store.succeed(run_id, "b", 1, None, dag.plan, token=b.token)
    snap = store.metrics()
    run = store.get_run(run_id)
    ta, tb = run.tasks["a"], run.tasks["b"]
    assert ta.finished_at and tb.queued_at and run.finished_at
    assert snap.runs[("m_handoff", "success")] == 1
    assert snap.attempts == {("m_handoff", "a", "success"): 1, ("m_handoff", "b", "success"): 1}
    h = snap.handoff["m_handoff"]
    assert h.count == 1  # b, released by a; a was queued by the submit
    assert h.sum == pytest.approx((tb.attempts[0].started_at - ta.finished_at).total_seconds(),
                                  abs=2e-6)
    # each task's wait counted on its own queue (the DAG version's), the default as None
    wait_a = (ta.attempts[0].started_at - ta.queued_at).total_seconds()  # type: ignore[operator]
    wait_b = (tb.attempts[0].started_at - tb.queued_at).total_seconds()
    assert snap.queue_wait[("m_handoff", None)].count == 1
    assert snap.queue_wait[("m_handoff", None)].sum == pytest.approx(wait_a, abs=2e-6)
    assert snap.queue_wait[("m_handoff", "special")].sum == pytest.approx(wait_b, abs=2e-6)
    d = snap.run_duration["m_handoff"]
    assert d.count == 1 and d.sum == pytest.approx(
        (run.finished_at - run.created_at).total_seconds(), abs=2e-6)
    assert d.cumulative[-1] == 1 and list(d.cumulative) == sorted(d.cumulative)
    assert snap.oldest_queued == {} and snap.oldest_queued_overall is None


def test_resends_count_and_a_resent_child_is_no_hand_off(store: Store) -> None:
    dag = _dag("m_resend")
    run_id = _run(store, dag)
    a = _claim(store, run_id, "a")
    store.succeed(run_id, "a", 1, None, dag.plan, token=a.token)  # b released, queued
    assert store.metrics().oldest_queued.keys() == {"m_resend"}
    for n in (1, 2):  # its message lost (say): the reconciler sends it again, twice
        taken = store.take_stalled(queued_before=LATER, lost_before=LATER)
        assert [(t.run_id, t.task_id) for t in taken] == [(run_id, "b")]
        assert store.metrics().resends == {"m_resend": n}
    b = _claim(store, run_id, "b")
    store.succeed(run_id, "b", 1, None, dag.plan, token=b.token)
    snap = store.metrics()
    assert snap.resends == {"m_resend": 2}
    assert snap.handoff["m_resend"].count == 0  # its wait began with the resend
    assert snap.queue_wait[("m_resend", None)].count == 2


def test_a_takeover_counts_the_lost_attempt(store: Store) -> None:
    dag = _dag("m_takeover")
    run_id = _run(store, dag)
    a = _claim(store, run_id, "a")
    store.succeed(run_id, "a", 1, None, dag.plan, token=a.token)
    _claim(store, run_id, "b", lease=0.0)  # its worker goes silent at once
    taken = _claim(store, run_id, "b")  # the redelivered message takes it over
    assert taken.took_over == 1 and taken.attempt == 2
    store.succeed(run_id, "b", 2, None, dag.plan, token=taken.token)
    snap = store.metrics()
    assert snap.takeovers == {"m_takeover": 1}
    assert snap.attempts[("m_takeover", "b", AttemptOutcome.LOST)] == 1
    assert snap.attempts[("m_takeover", "b", AttemptOutcome.SUCCESS)] == 1
    assert snap.handoff["m_takeover"].count == 1  # the first attempt of b, not the takeover
    assert snap.queue_wait[("m_takeover", None)].count == 3


def test_mapped_instances_count_under_their_mapped_task(store: Store) -> None:
    dag = CompiledDag.of(spec.build({"id": "m_map", "tasks": [
        {"id": "items", "kind": "shell", "command": "true"},
        {"id": "sq", "kind": "python", "callable": "tdag_metrics:sq", "args": [
            {"kind": "item", "task": "items"}]}]}))
    run_id = _run(store, dag)
    c = _claim(store, run_id, "items")
    store.succeed(run_id, "items", 1, [1, 2, 3], dag.plan, token=c.token)
    change = store.expand(run_id, "sq", 1, source="items", max_active=None, max_attempts=1,
                          max_items=10, worker="w", p=dag.plan)
    assert [t for t, _ in change.queued] == ["sq[0]", "sq[1]", "sq[2]"]
    for task_id, _ in change.queued:
        c = _claim(store, run_id, task_id)
        store.succeed(run_id, task_id, 1, 1, dag.plan, token=c.token)
    snap = store.metrics()
    assert snap.attempts == {("m_map", "items", "success"): 1, ("m_map", "sq", "success"): 3}
    run = store.get_run(run_id)
    expanded = run.tasks["sq"].started_at  # laid out by the expansion: ready then
    assert expanded is not None
    assert snap.handoff["m_map"].count == 3
    assert snap.handoff["m_map"].sum == pytest.approx(sum(
        (run.tasks[f"sq[{i}]"].attempts[0].started_at - expanded).total_seconds()
        for i in range(3)), abs=1e-5)
