"""The state store against real SQLite and PostgreSQL: schema and concurrent joins."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orchestrator.states import RunState
from orchestrator.store import Store
from orchestrator.store.tables import metadata
from tests.conftest import plan_of

pytestmark = pytest.mark.integration
PARENTS = 24


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    store = Store(database_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.dispose()
    assert diff == []


def _finish_parents(url: str, run_id: str, all_parents: list[str], parents: list[str],
                    out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = Store(url, migrate=False)
    released = []
    dag = plan_of({**{q: [] for q in all_parents}, "join": all_parents})
    for p in parents:
        assert store.claim(run_id, p, 1, worker="w", pid=0, lease_seconds=60, data_from=[],
                           max_lost=3) is not None
        adv = store.succeed(run_id, p, 1, p, dag)
        released += [n for n, _ in adv.ready]
    out.put(released)
    store.dispose()


def test_a_join_is_released_exactly_once_under_concurrent_parents(database_url: str) -> None:
    """Parents finishing in several processes at once: one, and only one, releases the join."""
    store = Store(database_url)
    run_id = uuid.uuid4().hex
    parents = [f"p{i}" for i in range(PARENTS)]
    upstream = {**{p: [] for p in parents}, "join": parents}
    store.create_run(run_id=run_id, dag_id="join", params={}, upstream=upstream,
                     max_attempts=dict.fromkeys(upstream, 1))
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
