"""The state store against real SQLite and PostgreSQL: schema and concurrent joins."""

from __future__ import annotations

import multiprocessing as mp
import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchestrator.model.states import RunState
from orchestrator.store import Claim, Store
from orchestrator.store.tables import metadata, task_instances
from tests.support import compiled_of, wait_until

pytestmark = pytest.mark.integration
PARENTS = 24


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    store = Store(database_url)  # the fixture ran `db upgrade` on it
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.dispose()
    assert diff == []


def _finish_parents(url: str, run_id: str, all_parents: list[str], parents: list[str],
                    out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = Store(url)
    released = []
    dag = compiled_of({**{q: [] for q in all_parents}, "join": all_parents})
    for p in parents:
        assert store.claim(run_id, p, 1, worker="w", pid=0, lease_seconds=60, data_from=[],
                           max_lost=3) is not None
        change = store.succeed(run_id, p, 1, p, dag.plan)
        released += [n for n, _ in change.queued]
    out.put(released)
    store.dispose()


def test_a_join_is_released_exactly_once_under_concurrent_parents(database_url: str) -> None:
    """Parents finishing in several processes at once: one, and only one, releases the join."""
    store = Store(database_url)
    run_id = uuid.uuid4().hex
    parents = [f"p{i}" for i in range(PARENTS)]
    store.create_run(compiled_of({**{p: [] for p in parents}, "join": parents}),
                     run_id=run_id, params={})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_finish_parents,
                         args=(database_url, run_id, parents, parents[i::4], out))
             for i in range(4)]
    for p in procs:
        p.start()
    released = [n for _ in procs for n in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert released == ["join"]
    run = store.get_run(run_id)
    assert run.tasks["join"].state == "queued"
    assert run.unfinished == 1 and run.state == RunState.RUNNING
    store.dispose()


@pytest.mark.postgres
def test_a_transaction_chosen_as_deadlock_victim_runs_again(postgres_url: str) -> None:
    """A parent's success locks its children in index order. Another transaction holds
    child 'b' and then asks for 'a', which the store's already holds: a deadlock, which
    PostgreSQL breaks by rolling back the transaction that waited first, the store's.
    The store runs it again and the success is recorded once."""
    store = Store(postgres_url)
    run_id = uuid.uuid4().hex
    up: dict[str, list[str]] = {"good": [], "broken": [], "a": ["good", "broken"],
                                "b": ["good", "broken"]}
    dag = compiled_of(up)
    store.create_run(dag, run_id=run_id, params={})
    claim = store.claim(run_id, "good", 1, worker="w", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    deadlocks = sa.text("SELECT deadlocks FROM pg_stat_database "
                        "WHERE datname = current_database()")
    waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                      "AND datname = current_database()")
    child = sa.select(task_instances.c.task_id).where(task_instances.c.run_id == run_id)
    with store.engine.connect() as probe:
        before = probe.execute(deadlocks).scalar_one()
    outcome: list[Any] = []
    with store.engine.connect() as other:
        tx = other.begin()
        other.execute(child.where(task_instances.c.task_id == "b").with_for_update())
        worker = threading.Thread(target=lambda: outcome.append(
            store.succeed(run_id, "good", 1, "ok", dag.plan, token=claim.token)))
        worker.start()

        def store_waits() -> bool:
            with store.engine.connect() as probe:
                return probe.execute(waiting).scalar_one() >= 1

        wait_until(store_waits, what="the store's transaction to wait for 'b'")
        other.execute(child.where(task_instances.c.task_id == "a").with_for_update())
        tx.commit()
    worker.join(timeout=60)
    assert not worker.is_alive()

    def counted() -> bool:
        # PostgreSQL publishes its statistics counters shortly after, not at once
        with store.engine.connect() as probe:
            return bool(probe.execute(deadlocks).scalar_one() > before)

    wait_until(counted, timeout=30, what="PostgreSQL to count the deadlock")
    (change,) = outcome
    assert change.applied and change.queued == []  # 'a' and 'b' still wait for 'broken'
    state = {t: ti.state for t, ti in store.get_run(run_id).tasks.items()}
    assert state == {"good": "success", "broken": "queued", "a": "pending", "b": "pending"}
    store.dispose()
