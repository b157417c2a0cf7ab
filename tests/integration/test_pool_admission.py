"""Pool admission against real databases (SQLite and PostgreSQL): a task takes its slots in
the transaction that queues it and gives them back in the one that ends it, and that same
transaction admits the next waiter (priority, then age), with no loop in between."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState, TaskState
from orchestrator.store import Change, Claim, Store
from orchestrator.store.tables import task_instances as ti

pytestmark = pytest.mark.integration


def _pool(store: Store, slots: int | None) -> str:
    name = f"adm_{uuid.uuid4().hex[:8]}"
    store.set_pool(name, slots)
    return name


def _dag(tasks: dict[str, dict[str, Any]], **dag: Any) -> CompiledDag:
    """Shell tasks with these options (``upstream`` among them), under a DAG id of its own
    so runs of other tests never share a DAG cap with it."""
    return CompiledDag.of(spec.build({
        "id": f"adm_{uuid.uuid4().hex[:8]}", **dag,
        "tasks": [{"id": t, "kind": "shell", "command": "true", **o}
                  for t, o in tasks.items()]}))


def _start(store: Store, dag: CompiledDag) -> tuple[str, list[str]]:
    run_id = uuid.uuid4().hex
    new = store.create_run(dag, run_id=run_id, params={})
    queued = list(dag.plan.initial) if new.queued is None else [t for t, _ in new.queued]
    return run_id, queued


def _states(store: Store, run_id: str) -> dict[str, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(ti.c.task_id, ti.c.state)
                                 .where(ti.c.run_id == run_id)).all())


def _finish(store: Store, dag: CompiledDag, run_id: str, task_id: str, *,
            ok: bool = True) -> Change:
    claim = store.claim(run_id, task_id, 1, worker="w", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    if ok:
        return store.succeed(run_id, task_id, 1, None, dag.plan, token=claim.token)
    return store.fail(run_id, task_id, 1, error_type="Boom", message="no", traceback=None,
                      retry_in=None, p=dag.plan, token=claim.token)


def test_a_pool_admits_its_slots_and_each_end_starts_the_next_waiter(store: Store) -> None:
    pool = _pool(store, 2)
    dag = _dag({t: {"pool": pool} for t in "abcde"})
    run_id, queued = _start(store, dag)
    assert queued == ["a", "b"]  # oldest first among equal priorities, by task id
    assert store.pool(pool).waiting == 3 and store.pool(pool).used == 2
    shown = next(p for p in store.metrics().pools if p.name == pool)  # /metrics reads this
    assert (shown.slots, shown.used, shown.queued, shown.waiting) == (2, 2, 2, 3)
    change = _finish(store, dag, run_id, "a")
    assert [t for t, _ in change.queued] == ["c"]  # the same transaction admitted it
    assert _states(store, run_id)["c"] == TaskState.QUEUED
    for t in "bcde":
        _finish(store, dag, run_id, t)
        assert store.pool(pool).used <= 2
    assert store.run_state(run_id) == RunState.SUCCESS
    assert store.pool(pool).used == 0


def test_higher_priority_first_then_the_oldest_waiter(store: Store) -> None:
    pool = _pool(store, 1)
    first = _dag({"hold": {"pool": pool}})
    low = _dag({"low": {"pool": pool, "priority": 1}})
    high = _dag({"high": {"pool": pool, "priority": 5}})
    older = _dag({"older": {"pool": pool, "priority": 5}})
    holder, _ = _start(store, first)
    waiting = {}
    for d in (low, older, high):  # older is made ready before high, both at priority 5
        waiting[d.id] = _start(store, d)[0]
    change = _finish(store, first, holder, "hold")
    assert change.elsewhere == [(waiting[older.id], "older", 1)]
    change = _finish(store, older, waiting[older.id], "older")
    assert change.elsewhere == [(waiting[high.id], "high", 1)]
    change = _finish(store, high, waiting[high.id], "high")
    assert change.elsewhere == [(waiting[low.id], "low", 1)]


def test_a_waiter_that_does_not_fit_holds_the_line(store: Store) -> None:
    pool = _pool(store, 3)
    dag = _dag({"one": {"pool": pool, "pool_slots": 2},
                "big": {"pool": pool, "pool_slots": 3, "priority": 1},
                "huge": {"pool": pool, "pool_slots": 4, "priority": 2},
                "small": {"pool": pool}})
    run_id, queued = _start(store, dag)
    # huge can never fit (passed over); big heads the line, so small waits behind it
    # although a slot is free: a big task is not starved by small ones
    assert queued == ["big"]
    change = _finish(store, dag, run_id, "big")
    assert [t for t, _ in change.queued] == ["one", "small"]
    assert _states(store, run_id)["huge"] == TaskState.WAITING
    store.set_pool(pool, 4)  # now it fits once the others end
    for t in ("one", "small"):
        _finish(store, dag, run_id, t)
    assert _states(store, run_id)["huge"] == TaskState.QUEUED


def test_max_active_tasks_bounds_a_dag_in_the_default_pool(store: Store) -> None:
    dag = _dag({"a": {}, "b": {}, "c": {}, "d": {"upstream": ["a"]}}, max_active_tasks=2)
    run_id, queued = _start(store, dag)
    assert queued == ["a", "b"]
    change = _finish(store, dag, run_id, "a")  # d ready, c waits longer: c first
    assert [t for t, _ in change.queued] == ["c"]
    assert _states(store, run_id)["d"] == TaskState.WAITING
    assert [t for t, _ in _finish(store, dag, run_id, "b").queued] == ["d"]


def test_a_retry_keeps_its_slot_and_a_final_failure_frees_it(store: Store) -> None:
    pool = _pool(store, 1)
    dag = _dag({"flaky": {"pool": pool, "retries": 1}, "next": {"pool": pool}})
    run_id, queued = _start(store, dag)
    assert queued == ["flaky"]
    claim = store.claim(run_id, "flaky", 1, worker="w", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    retry = store.fail(run_id, "flaky", 1, error_type="Boom", message="again", traceback=None,
                       retry_in=30, p=dag.plan, token=claim.token)
    assert retry.queued == [] and store.pool(pool).used == 1  # up_for_retry holds it
    assert _states(store, run_id)["next"] == TaskState.WAITING
    with store.engine.begin() as conn:  # its backoff over
        conn.execute(ti.update().where(ti.c.run_id == run_id, ti.c.task_id == "flaky")
                     .values(queued_at=None))
    claim = store.claim(run_id, "flaky", 2, worker="w", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    final = store.fail(run_id, "flaky", 2, error_type="Boom", message="done", traceback=None,
                       retry_in=None, p=dag.plan, token=claim.token)
    assert [t for t, _ in final.queued] == ["next"]


def test_cancelling_a_run_gives_its_slots_to_another_runs_waiters(store: Store) -> None:
    pool = _pool(store, 1)
    dag = _dag({"t": {"pool": pool}})
    holder, _ = _start(store, dag)
    waiter, queued = _start(store, dag)
    assert queued == []
    change = store.cancel(holder)
    assert change.elsewhere == [(waiter, "t", 1)]
    assert _states(store, waiter)["t"] == TaskState.QUEUED


def test_a_cancelled_waiter_never_starts(store: Store) -> None:
    pool = _pool(store, 1)
    dag = _dag({"t": {"pool": pool}})
    holder, _ = _start(store, dag)
    waiter, _ = _start(store, dag)
    store.cancel(waiter)
    assert _finish(store, dag, holder, "t").elsewhere == []
    assert _states(store, waiter)["t"] == TaskState.CANCELLED
    assert store.pool(pool).waiting == 0


def test_mapped_instances_take_the_slots_not_their_mapped_task(store: Store) -> None:
    pool = _pool(store, 2)
    dag = CompiledDag.of(spec.build({"id": f"adm_{uuid.uuid4().hex[:8]}", "tasks": [
        {"id": "src", "kind": "shell", "command": "true"},
        {"id": "each", "kind": "python", "callable": "builtins:print", "pool": pool,
         "args": [{"kind": "item", "task": "src"}]}]}))
    run_id, _ = _start(store, dag)
    claim = store.claim(run_id, "src", 1, worker="w", pid=1, lease_seconds=60, data_from=[],
                        max_lost=3)
    assert isinstance(claim, Claim)
    store.succeed(run_id, "src", 1, [1, 2, 3, 4, 5], dag.plan, token=claim.token)
    change = store.expand(run_id, "each", 1, source="src", max_active=None, max_attempts=1,
                          max_items=100, worker="w", p=dag.plan)
    assert [t for t, _ in change.queued] == ["each[0]", "each[1]"]
    assert store.pool(pool).used == 2
    assert [t for t, _ in _finish(store, dag, run_id, "each[0]").queued] == ["each[2]"]
    for t in ("each[1]", "each[2]", "each[3]", "each[4]"):
        _finish(store, dag, run_id, t)
        assert store.pool(pool).used <= 2
    assert store.run_state(run_id) == RunState.SUCCESS


def test_growing_a_pool_admits_waiters_for_the_coordinator_to_send(store: Store) -> None:
    pool = _pool(store, 1)
    dag = _dag({t: {"pool": pool} for t in "abc"})
    run_id, _ = _start(store, dag)
    store.set_pool(pool, 3)
    with store.engine.connect() as conn:
        rows = conn.execute(select(ti.c.task_id, ti.c.state, ti.c.unsent)
                            .where(ti.c.run_id == run_id)).all()
    assert {r.task_id: (r.state, r.unsent) for r in rows} == {
        "a": (TaskState.QUEUED, False), "b": (TaskState.QUEUED, True),
        "c": (TaskState.QUEUED, True)}


def test_concurrent_ends_never_admit_one_too_many(database_url: str) -> None:
    """Eight threads end tasks of one pool at once, each in its own transaction: the
    serialized fills never put more than the pool's slots in flight."""
    setup = Store(database_url)
    pool = _pool(setup, 3)
    dag = _dag({f"t{i}": {"pool": pool} for i in range(24)})
    run_id, _ = _start(setup, dag)
    errors_seen: list[BaseException] = []
    peak = [0]
    lock = threading.Lock()

    def worker() -> None:
        s = Store(database_url)
        try:
            while True:
                with lock:
                    queued = [t for t, st in _states(s, run_id).items()
                              if st == TaskState.QUEUED]
                    used = s.pool(pool).used
                    peak[0] = max(peak[0], used)
                    if not queued:
                        if all(st == TaskState.SUCCESS for st in _states(s, run_id).values()):
                            return
                        continue
                    task = queued[0]
                    claim = s.claim(run_id, task, 1, worker="w", pid=1, lease_seconds=60,
                                    data_from=[], max_lost=3)
                if not isinstance(claim, Claim):
                    continue
                s.succeed(run_id, task, 1, None, dag.plan, token=claim.token)
        except BaseException as exc:  # reported by the test thread
            errors_seen.append(exc)
        finally:
            s.dispose()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors_seen == []
    assert setup.run_state(run_id) == RunState.SUCCESS
    assert 1 <= peak[0] <= 3
    setup.dispose()


def test_a_bounded_default_pool_gates_every_dag(fresh_url: str) -> None:
    store = Store(fresh_url)
    store.upgrade()
    try:
        store.set_pool("default", 1)
        dag = _dag({"a": {}, "b": {}})
        run_id, queued = _start(store, dag)
        assert queued == ["a"] and store.pool("default").waiting == 1
        assert [t for t, _ in _finish(store, dag, run_id, "a").queued] == ["b"]
        store.set_pool("default", None)
    finally:
        store.dispose()


def test_a_full_pool_never_starves_another(store: Store) -> None:
    """apache/airflow#45636: waiters of a full pool filled the scheduler's batch and the
    other pool's tasks never started. Here each pool is filled on its own."""
    busy, other = _pool(store, 1), _pool(store, 1)
    crowd = _dag({f"c{i}": {"pool": busy, "priority": 10} for i in range(60)})
    crowd_run, crowd_queued = _start(store, crowd)
    assert len(crowd_queued) == 1  # one holds busy's slot, 59 wait with a high priority
    mixed = _dag({"b1": {"pool": other}, "b2": {"pool": other}, "d1": {"pool": busy}})
    run_id, queued = _start(store, mixed)
    assert queued == ["b1"]  # other's slot was free: busy's crowd does not stand in line
    change = _finish(store, mixed, run_id, "b1")
    assert [t for t, _ in change.queued] == ["b2"]
    assert _states(store, run_id)["d1"] == TaskState.WAITING
    # busy's slot goes to the highest priority there, the crowd, not to d1
    change = _finish(store, crowd, crowd_run, crowd_queued[0])
    assert len(change.queued) == 1 and change.queued[0][0].startswith("c")
