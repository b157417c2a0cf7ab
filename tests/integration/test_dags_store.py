"""Pause state and the schedules' listing in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import Store

pytestmark = pytest.mark.integration


def test_pause_before_registration_then_unpause(store: Store) -> None:
    dag_id = f"dags_store_{uuid.uuid4().hex[:8]}"
    assert store.is_paused(dag_id) is False
    assert store.dag_states([dag_id]) == []
    store.set_paused(dag_id, True)
    assert store.is_paused(dag_id) is True
    [state] = store.dag_states([dag_id])
    assert (state.dag_id, state.paused, state.schedule, state.next_fire) == (
        dag_id, True, None, None)
    store.set_paused(dag_id, False)
    assert store.is_paused(dag_id) is False
    assert [s.dag_id for s in store.dag_states() if s.dag_id == dag_id] == [dag_id]


def test_registration_keeps_a_pause_and_lists_the_schedule(store: Store) -> None:
    dag_id = f"dags_store_{uuid.uuid4().hex[:8]}"
    store.set_paused(dag_id, True)
    dag = CompiledDag.of(spec.build({
        "id": dag_id, "schedule": "*/5 * * * *", "timezone": "Europe/Zurich",
        "tasks": [{"id": "a", "kind": "shell", "command": "true"}]}))
    store.register_dags([dag])
    [state] = store.dag_states([dag_id])
    assert state.paused is True
    assert (state.schedule, state.timezone, state.catchup) == (
        "*/5 * * * *", "Europe/Zurich", "latest")
    assert state.next_fire is not None and state.last_fire is None
