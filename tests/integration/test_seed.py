"""The benchmarks' bulk seeding (orchestrator/store/seed.py) writes runs the store reads
back as finished runs, in the order their spread says; a scratch PostgreSQL database
gets its planner statistics on request and is gone after its block."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import Store, seed
from tests.support import compiled_of

pytestmark = pytest.mark.integration


def test_seeded_runs_read_back_finished_newest_first(store: Store) -> None:
    dag = compiled_of({"a": [], "b": ["a"], "c": ["b"], "d": ["a"]},
                      dag_id=f"seeded_{uuid.uuid4().hex[:8]}")
    start = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)  # in the past: other tests list the newest runs
    spread = seed.Spread(start, every=dt.timedelta(seconds=2), offset=dt.timedelta(seconds=1))
    before = store.count_rows()
    rows = seed.finished_runs(store, dag, 6, spread, failed_every=3)
    assert rows == 6 * 4
    after = store.count_rows()
    assert after["runs"] - before["runs"] == 6
    assert after["task_instances"] - before["task_instances"] == 24

    page, cursor = store.runs_page(dag.id, None, 10, None)
    assert cursor is None and len(page) == 6
    assert [r.created_at for r in page] == [spread.at(i) for i in range(5, -1, -1)]
    # runs 2 and 5 (every third) failed halfway; the others succeeded
    assert [r.state for r in reversed(page)] == [RunState.SUCCESS, RunState.SUCCESS,
                                                 RunState.FAILED] * 2
    failed = store.get_run(page[0].id)
    order = list(dag.plan.upstream)
    states = [failed.tasks[t].state for t in order]
    assert states == [TaskState.SUCCESS, TaskState.SUCCESS, TaskState.FAILED,
                      TaskState.UPSTREAM_FAILED]
    assert [a.outcome for a in failed.tasks[order[2]].attempts] == [AttemptOutcome.FAILED]
    assert failed.tasks[order[3]].attempts == []  # it never ran
    ok = store.get_run(page[1].id)
    assert ok.unfinished == 0 and ok.dag_version == dag.version
    assert all(t.state == TaskState.SUCCESS and len(t.attempts) == 1
               for t in ok.tasks.values())


@pytest.mark.postgres
def test_a_scratch_postgres_database_is_dropped_after_its_block(postgres_url: str) -> None:
    with seed.scratch_postgres(postgres_url, prefix="orch_scratch_test") as url:
        name = sa.make_url(url).database
        s = Store(url)
        try:
            s.upgrade()
            assert s.count_rows()["runs"] == 0
            seed.finished_runs(s, compiled_of({"a": []}), 30,
                               seed.Spread(dt.datetime(2031, 1, 1, tzinfo=dt.UTC)))
            seed.analyze(s)
            with s.engine.connect() as conn:  # ANALYZE counted them for the planner
                assert conn.exec_driver_sql(
                    "SELECT reltuples FROM pg_class WHERE relname = 'runs'").scalar_one() == 30
        finally:
            s.dispose()
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                                {"n": name}).scalar_one()
    finally:
        engine.dispose()
    assert left == 0
