"""Pools management against real databases (SQLite and PostgreSQL): set, list, delete;
usage is read from the task rows that hold a slot (never a counter); bad input and the
default pool are refused with nothing written."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from orchestrator import errors
from orchestrator.model.states import TaskState
from orchestrator.store import Store
from orchestrator.store.tables import task_instances
from tests.support import compiled_of

pytestmark = pytest.mark.integration
DAG = compiled_of({"a": [], "b": [], "c": []}, dag_id="pools_store")


def _name() -> str:
    return f"pools_store_{uuid.uuid4().hex[:8]}"


def _by_name(store: Store, name: str) -> object:
    return next(p for p in store.pools() if p.name == name)


def test_set_list_resize_and_delete(store: Store) -> None:
    name = _name()
    made = store.set_pool(name, 2, "two at a time")
    assert (made.name, made.slots, made.used, made.waiting, made.description) == (
        name, 2, 0, 0, "two at a time")
    assert _by_name(store, name) == made
    resized = store.set_pool(name, 5)  # no description given: it keeps its own
    assert (resized.slots, resized.description) == (5, "two at a time")
    assert store.set_pool(name, None, "").slots is None  # unbounded, description cleared
    store.delete_pool(name)
    assert all(p.name != name for p in store.pools())
    with pytest.raises(errors.UnknownPool):
        store.delete_pool(name)
    with pytest.raises(errors.UnknownPool):
        store.pool(name)


def test_the_default_pool_is_listed_and_never_deleted(store: Store) -> None:
    assert any(p.name == "default" for p in store.pools())
    with pytest.raises(errors.Conflict, match="default pool"):
        store.delete_pool("default")
    assert any(p.name == "default" for p in store.pools())


@pytest.mark.parametrize(("name", "slots", "description"), [
    ("", 1, None), (" padded", 1, None), ("a/b", 1, None), ("x" * 101, 1, None),
    ("nul\x00", 1, None), ("ok", -1, None), ("ok", 10**7, None), ("ok", True, None),
    ("ok", 1, "x" * 1001), ("ok", 1, "nul\x00")])
def test_bad_input_is_refused_and_writes_nothing(store: Store, name: str, slots: int,
                                                 description: str | None) -> None:
    with pytest.raises(errors.InvalidArgument):
        store.set_pool(name, slots, description)
    assert all(p.name != name for p in store.pools())


def test_usage_is_the_slots_of_holding_rows_and_blocks_delete(store: Store) -> None:
    name = _name()
    store.set_pool(name, 3)
    run_id = uuid.uuid4().hex
    store.create_run(DAG, run_id=run_id, params={})
    # The rows as admission leaves them: a holds 2 slots queued, b holds 1 running,
    # c waits for one.
    rows = {"a": (TaskState.QUEUED, 2), "b": (TaskState.RUNNING, 1),
            "c": (TaskState.WAITING, 1)}
    with store.engine.begin() as conn:
        for task_id, (state, slots) in rows.items():
            conn.execute(update(task_instances).where(
                task_instances.c.run_id == run_id, task_instances.c.task_id == task_id)
                .values(pool=name, pool_slots=slots, state=state))
    got = store.pool(name)
    assert (got.used, got.queued, got.running, got.waiting) == (3, 1, 1, 1)
    assert _by_name(store, name) == got
    with pytest.raises(errors.Conflict, match="1 queued, 1 running, 1 waiting"):
        store.delete_pool(name)
    assert store.pool(name).slots == 3
    # Rows that end give their slots back with no counter to fix: usage follows them.
    with store.engine.begin() as conn:
        conn.execute(update(task_instances).where(task_instances.c.run_id == run_id)
                     .values(state=TaskState.CANCELLED))
    store.cancel(run_id)  # no coordinator on the shared database finds it half-done
    got = store.pool(name)
    assert (got.used, got.queued, got.running, got.waiting) == (0, 0, 0, 0)
    store.delete_pool(name)
