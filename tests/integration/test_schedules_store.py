"""The scheduler's store part over simulated time: register, fire, catchup, overlap, pause."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.store import Store
from orchestrator.store.tables import dags, runs

pytestmark = pytest.mark.integration
T0 = dt.datetime(2001, 3, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url: str) -> Any:
    s = Store(database_url)
    yield s
    s.dispose()


def _dag(schedule: str, **options: Any) -> CompiledDag:
    dag_id = f"sched_{uuid.uuid4().hex[:10]}"
    return CompiledDag.of(spec.build({"id": dag_id, "schedule": schedule, **options, "tasks": [
        {"id": "a", "kind": "shell", "command": "true"}]}))


def _start_at(store: Store, dag: CompiledDag, t: dt.datetime) -> None:
    store.register_dags([dag])
    with store.engine.begin() as conn:
        conn.execute(sa.update(dags).where(dags.c.dag_id == dag.id).values(next_fire=t))


def _row(store: Store, dag_id: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(dags).where(dags.c.dag_id == dag_id)).one()


def _runs(store: Store, dag_id: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(runs).where(runs.c.dag_id == dag_id)
                                 .order_by(runs.c.logical_time)))


def _fire(store: Store, now: dt.datetime, grace: float = 60.0) -> None:
    store.fire_due(now, grace=grace, limit=100_000)


def test_register_keeps_next_fire_until_the_schedule_changes(store: Store) -> None:
    dag = _dag("every 1h")
    store.register_dags([dag])
    first = _row(store, dag.id)
    assert first.next_fire is not None and first.next_fire.minute == 0
    store.register_dags([dag, dag])
    assert _row(store, dag.id).next_fire == first.next_fire
    changed = CompiledDag.of(spec.build({**dag.data, "schedule": "every 1s"}))
    store.register_dags([changed])
    row = _row(store, dag.id)
    assert row.version == changed.version and row.next_fire != first.next_fire
    assert row.schedule["value"] == "every 1s"


def test_catchup_all_is_capped_with_the_exact_skipped_count(store: Store) -> None:
    dag = _dag("every 1m", catchup="all", max_catchup=5)
    _start_at(store, dag, T0)
    _fire(store, T0 + dt.timedelta(minutes=9, seconds=30))  # ticks 10:00..10:09 due
    made = _runs(store, dag.id)
    assert [r.logical_time for r in made] == [T0 + dt.timedelta(minutes=m) for m in range(5, 10)]
    assert all(r.trigger == "schedule" and r.interval_end - r.interval_start
               == dt.timedelta(minutes=1) for r in made)
    row = _row(store, dag.id)
    assert row.skipped == 5 and row.next_fire == T0 + dt.timedelta(minutes=10)
    _fire(store, T0 + dt.timedelta(minutes=9, seconds=59))  # nothing new is due
    assert len(_runs(store, dag.id)) == 5


def test_catchup_latest_and_none(store: Store) -> None:
    latest = _dag("every 1m", catchup="latest")
    none = _dag("every 1m", catchup="none")
    _start_at(store, latest, T0)
    _start_at(store, none, T0)
    now = T0 + dt.timedelta(minutes=4, seconds=10)
    _fire(store, now, grace=70)  # 10:03 and 10:04 are within 70 s
    assert [r.logical_time for r in _runs(store, latest.id)] == [T0 + dt.timedelta(minutes=4)]
    assert _row(store, latest.id).skipped == 4
    assert [r.logical_time for r in _runs(store, none.id)] == [
        T0 + dt.timedelta(minutes=3), T0 + dt.timedelta(minutes=4)]
    assert _row(store, none.id).skipped == 3


def test_overlap_skip_runs_up_to_the_limit(store: Store) -> None:
    dag = _dag("every 1m", catchup="all", max_active_runs=2)
    _start_at(store, dag, T0)
    _fire(store, T0 + dt.timedelta(minutes=3))
    assert [r.logical_time for r in _runs(store, dag.id)] == [T0, T0 + dt.timedelta(minutes=1)]
    assert _row(store, dag.id).skipped == 2


def test_overlap_queue_starts_queued_runs_in_logical_time_order(store: Store) -> None:
    dag = _dag("every 1m", catchup="all", max_active_runs=1, overlap="queue")
    _start_at(store, dag, T0)
    _fire(store, T0 + dt.timedelta(minutes=3))
    made = _runs(store, dag.id)
    assert [r.state for r in made] == [RunState.RUNNING] + [RunState.QUEUED] * 3
    order = []
    for _ in range(3):
        running = [r for r in _runs(store, dag.id) if r.state == RunState.RUNNING]
        assert len(running) == 1
        change = store.cancel(running[0].id)
        assert len(change.started_runs) == 1
        order.append(change.started_runs[0])
        assert store.queued_tasks(change.started_runs[0]) == [("a", 1)]
    assert order == [r.id for r in made[1:]]
    # a queued run can be cancelled too, and takes no slot
    _fire(store, T0 + dt.timedelta(minutes=5))  # 10:04 and 10:05 wait for 10:03
    queued = [r for r in _runs(store, dag.id) if r.state == RunState.QUEUED]
    assert len(queued) == 2
    assert store.cancel(queued[0].id).started_runs == []  # the slot is still taken
    assert store.run_state(queued[0].id) == RunState.CANCELLED


def test_paused_dag_does_not_fire(store: Store) -> None:
    dag = _dag("every 1m", catchup="all")
    _start_at(store, dag, T0)
    with store.engine.begin() as conn:
        conn.execute(sa.update(dags).where(dags.c.dag_id == dag.id).values(paused=True))
    _fire(store, T0 + dt.timedelta(minutes=2))
    assert _runs(store, dag.id) == []
    with store.engine.begin() as conn:
        conn.execute(sa.update(dags).where(dags.c.dag_id == dag.id).values(paused=False))
    _fire(store, T0 + dt.timedelta(minutes=2))
    assert len(_runs(store, dag.id)) == 3


def test_zurich_fall_back_day_fires_a_daily_0230_once(store: Store) -> None:
    dag = _dag("30 2 * * *", timezone="Europe/Zurich", catchup="all")
    day = dt.datetime(2001, 10, 28, tzinfo=dt.UTC)  # clocks go back 03:00 -> 02:00 CET
    _start_at(store, dag, day - dt.timedelta(hours=12))
    store.register_dags([dag])
    with store.engine.begin() as conn:
        conn.execute(sa.update(dags).where(dags.c.dag_id == dag.id).values(
            next_fire=dt.datetime(2001, 10, 27, 0, 30, tzinfo=dt.UTC)))
    now = day - dt.timedelta(hours=2)
    while now < day + dt.timedelta(hours=22):  # simulated time in 5-minute passes
        now += dt.timedelta(minutes=5)
        _fire(store, now)
    times = [r.logical_time for r in _runs(store, dag.id)]
    # 02:30 happens twice that night (CEST, then CET): one run, at the first
    assert [t for t in times if t.date() == dt.date(2001, 10, 28)] == [
        dt.datetime(2001, 10, 28, 0, 30, tzinfo=dt.UTC)]


def test_submit_with_a_logical_time_is_unique_per_dag(broker_url: str,
                                                      database_url: str) -> None:
    from orchestrator import errors
    from orchestrator.wiring import Wiring
    from tests.support import make_settings

    dag = _dag("every 1m")
    at = T0 + dt.timedelta(seconds=90)
    with Wiring(make_settings(broker_url, database_url)) as wiring:
        first = wiring.commands.submit(dag, logical_time=at)
        with pytest.raises(errors.Conflict, match=first.run_id):
            wiring.commands.submit(dag, logical_time=at.replace(tzinfo=None))
        made = _runs(wiring.store, dag.id)
        assert [(r.id, r.trigger, r.logical_time, r.interval_start, r.interval_end)
                for r in made] == [(first.run_id, "manual", at, at,
                                    T0 + dt.timedelta(minutes=2))]
        wiring.store.cancel(first.run_id)



def test_submit_to_a_paused_dag_writes_nothing(broker_url: str, database_url: str) -> None:
    from orchestrator import errors
    from orchestrator.wiring import Wiring
    from tests.support import make_settings

    dag = _dag("every 1m")
    with Wiring(make_settings(broker_url, database_url)) as wiring:
        wiring.store.set_paused(dag.id, True)
        with pytest.raises(errors.DagPaused, match="paused"):
            wiring.commands.submit(dag, logical_time=T0)
        assert _runs(wiring.store, dag.id) == []
