"""Named events and asset events in the store: consumed by a run in the transaction that
stores them, or left pending (paused subscriber), never dropped; bad input writes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrator import errors
from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.store import Store
from orchestrator.store.tables import dags


def _dag(dag_id: str, schedule: Any, *, outlets: list[str] | None = None,
         max_active_runs: int | None = None) -> CompiledDag:
    return CompiledDag.of(spec.build({
        "id": dag_id, "schedule": schedule, "max_active_runs": max_active_runs,
        "tasks": [{"id": "t", "kind": "shell", "command": "true",
                   "outlets": outlets or []}]}))


def _register(store: Store, dag_list: list[CompiledDag]) -> None:
    """B's register_dags when it is in; until then the rows are written here (test setup)."""
    if hasattr(store, "register_dags"):
        store.register_dags(dag_list)
        return
    from orchestrator.model import schedule as schedule_
    from orchestrator.store import runs
    from orchestrator.store.tables import dag_triggers
    with store.engine.begin() as conn:
        for dag in dag_list:
            runs.put_version(conn, dag, dt.datetime.now(dt.UTC))
            conn.execute(sa.insert(dags).values(dag_id=dag.id, version=dag.version,
                                                max_active_runs=dag.spec.max_active_runs))
            s = schedule_.parse(dag.spec.schedule)
            if isinstance(s, schedule_.OnEvent):
                conn.execute(sa.insert(dag_triggers).values(dag_id=dag.id, kind="event",
                                                            name=s.name))
            elif isinstance(s, schedule_.OnAssets):
                for n in s.names:
                    conn.execute(sa.insert(dag_triggers).values(dag_id=dag.id, kind="asset",
                                                                name=n))


def _pause(store: Store, dag_id: str, paused: bool) -> None:
    """B's set_paused when it is in; until then the row is written here (test setup)."""
    if hasattr(store, "set_paused"):
        store.set_paused(dag_id, paused)
        return
    with store.engine.begin() as conn:
        conn.execute(sa.update(dags).where(dags.c.dag_id == dag_id).values(paused=paused))


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def test_event_starts_one_run_per_event_with_its_payload(store: Store) -> None:
    name = f"ev-{_uid()}"
    dag = _dag(f"tev_{_uid()}", {"event": name})
    _register(store, [dag])
    first = store.emit_event(name, {"n": 1})
    second = store.emit_event(name, {"n": 2})
    assert len(first.runs) == 1 and len(second.runs) == 1
    assert first.started == first.runs and first.pending == 0
    header = store.header(first.runs[0])
    assert header.trigger == "event"
    assert header.payload == {"event": name, "id": first.event_id, "payload": {"n": 1}}
    assert store.queued_tasks(first.runs[0]) == [("t", 1)]
    listed = {e.id: e for e in store.events(kind="event", name=name)}
    assert listed[first.event_id].consumers == [(dag.id, first.runs[0])]


def test_max_active_runs_queues_every_event(store: Store) -> None:
    name = f"ev-{_uid()}"
    dag = _dag(f"tevq_{_uid()}", {"event": name}, max_active_runs=1)
    _register(store, [dag])
    made = [store.emit_event(name, {"i": i}) for i in range(5)]
    assert all(len(m.runs) == 1 for m in made)
    states = [store.run_state(m.runs[0]) for m in made]
    assert states == [RunState.RUNNING] + [RunState.QUEUED] * 4
    assert store.events(name=name, pending_only=True) == []


def test_paused_subscriber_keeps_the_event_pending(store: Store) -> None:
    name = f"ev-{_uid()}"
    dag = _dag(f"tevp_{_uid()}", {"event": name})
    _register(store, [dag])
    _pause(store, dag.id, True)
    res = store.emit_event(name, {"x": 1})
    assert res.runs == [] and res.pending == 1
    pending = store.events(name=name, pending_only=True)
    assert [(e.id, e.consumers) for e in pending] == [(res.event_id, [(dag.id, None)])]
    assert store.consume_pending(dag.id).runs == []  # still paused
    # Unpausing consumes it in the same transaction: nothing is left for a later call.
    later = store.set_paused(dag.id, False)
    assert len(later.runs) == 1 and later.started == later.runs
    assert store.header(later.runs[0]).payload["id"] == res.event_id
    assert store.queued_tasks(later.runs[0]) == [("t", 1)]
    assert store.events(name=name, pending_only=True) == []
    assert store.consume_pending(dag.id).runs == []


def test_unpausing_queues_the_pending_events_behind_the_run_slot(store: Store) -> None:
    name = f"ev-{_uid()}"
    dag = _dag(f"tevu_{_uid()}", {"event": name}, max_active_runs=1)
    _register(store, [dag])
    assert store.set_paused(dag.id, True).runs == []
    held = [store.emit_event(name, {"i": i}) for i in range(3)]
    assert all(h.runs == [] and h.pending == 1 for h in held)
    done = store.set_paused(dag.id, False)
    assert len(done.runs) == 3 and done.started == done.runs[:1]
    assert [store.run_state(r) for r in done.runs] == [RunState.RUNNING] + [RunState.QUEUED] * 2
    assert [store.header(r).payload["payload"] for r in done.runs] == [{"i": i} for i in range(3)]
    assert store.events(name=name, pending_only=True) == []
    assert store.set_paused(dag.id, False).runs == []  # unpausing again consumes nothing


def test_unpausing_a_dag_nobody_registered_consumes_nothing(store: Store) -> None:
    name = f"ev-{_uid()}"
    res = store.emit_event(name, {"x": 1})
    assert store.set_paused(f"tevn_{_uid()}", False).runs == []
    assert [e.id for e in store.events(name=name, pending_only=True)] == [res.event_id]


def test_event_without_subscriber_stays_pending_until_one_subscribes(store: Store) -> None:
    name = f"ev-{_uid()}"
    res = store.emit_event(name, None)
    assert res.runs == [] and res.pending == 1
    assert [e.id for e in store.events(name=name, pending_only=True)] == [res.event_id]
    dag = _dag(f"tevl_{_uid()}", {"event": name})
    _register(store, [dag])
    assert len(store.consume_pending(dag.id).runs) == 1


@pytest.mark.parametrize("name,payload", [
    ("bad name!", {}), ("ok", {"x": float("nan")}), ("ok", {"x": "\x00"}),
    ("ok", {"x": "a" * 70000})])
def test_bad_event_writes_nothing(store: Store, name: str, payload: Any) -> None:
    before = store.count_rows()
    with pytest.raises(errors.InvalidArgument):
        store.emit_event(name, payload, max_bytes=65536)
    assert store.count_rows() == before


def _succeed_root(store: Store, dag: CompiledDag) -> str:
    run_id = uuid.uuid4().hex
    store.create_run(dag, run_id=run_id, params={})
    claim = store.claim(run_id, "t", 1, worker="w", pid=1, lease_seconds=30, data_from=[],
                        max_lost=3)
    assert claim is not None and not isinstance(claim, tuple)
    change = store.succeed(run_id, "t", 1, None, dag.plan, token=getattr(claim, "token", None))
    assert change.applied
    return run_id


def test_asset_any_consumer_run_in_the_producers_transaction(store: Store) -> None:
    asset = f"wh/{_uid()}"
    producer = _dag(f"tap_{_uid()}", None, outlets=[asset])
    consumer = _dag(f"tac_{_uid()}", {"assets": [asset], "when": "any"})
    _register(store, [producer, consumer])
    run_id = uuid.uuid4().hex
    store.create_run(producer, run_id=run_id, params={})
    claim = store.claim(run_id, "t", 1, worker="w", pid=1, lease_seconds=30, data_from=[],
                        max_lost=3)
    change = store.succeed(run_id, "t", 1, None, producer.plan,
                           token=getattr(claim, "token", None))
    assert len(change.started_runs) == 1
    started = change.started_runs[0]
    header = store.header(started)
    assert header.trigger == "asset"
    assert [a["name"] for a in header.payload["assets"]] == [asset]
    assert header.payload["assets"][0]["run_id"] == run_id
    run = store.get_run(started, with_results=False)
    attempt = store.get_run(run_id).tasks["t"]
    assert attempt.finished_at is not None and run.created_at == attempt.finished_at


def test_asset_all_needs_every_asset(store: Store) -> None:
    a, b = f"wh/{_uid()}", f"wh/{_uid()}"
    pa, pb = _dag(f"tapa_{_uid()}", None, outlets=[a]), _dag(f"tapb_{_uid()}", None, outlets=[b])
    consumer = _dag(f"taca_{_uid()}", {"assets": [a, b], "when": "all"})
    _register(store, [pa, pb, consumer])
    _succeed_root(store, pa)
    _succeed_root(store, pa)
    assert store.list_runs(dag_id=consumer.id) == []
    _succeed_root(store, pb)
    runs = store.list_runs(dag_id=consumer.id)
    assert len(runs) == 1
    names = sorted(x["name"] for x in store.header(runs[0].id).payload["assets"])
    assert names == sorted([a, a, b])
    assert store.events(kind="asset", name=a, pending_only=True) == []


def test_task_without_outlets_stores_no_event(store: Store) -> None:
    dag = _dag(f"tano_{_uid()}", None)
    assert dag.plan.outlets == {}
    run_id = _succeed_root(store, dag)
    assert all(e.run_id != run_id for e in store.events(kind="asset", limit=1000))
