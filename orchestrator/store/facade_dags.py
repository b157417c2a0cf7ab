"""The store's DAG part: pause state and the schedules' listing."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.model import records
from orchestrator.store import dag_rows
from orchestrator.store import engine as engine_
from orchestrator.store.base import StoreBase, _now


class DagsMixin(StoreBase):
    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause; creates the DAG's row when no coordinator registered it yet."""
        with self._tx() as conn:
            dag_rows.set_paused(conn, dag_id, paused, _now())

    @engine_.retry_transient
    def is_paused(self, dag_id: str) -> bool:
        """False when the DAG has no row."""
        with self._tx(write=False) as conn:
            return dag_rows.is_paused(conn, dag_id)

    @engine_.retry_transient
    def dag_states(self, dag_ids: Sequence[str] | None = None) -> list[records.DagState]:
        with self._tx(write=False) as conn:
            return dag_rows.states(conn, dag_ids)
