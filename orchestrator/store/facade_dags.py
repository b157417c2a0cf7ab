"""The store's DAG part: pause state and the schedules' listing."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.model import records
from orchestrator.store import dag_rows, triggers
from orchestrator.store import engine as engine_
from orchestrator.store.base import _now
from orchestrator.store.facade_triggers import TriggersMixin
from orchestrator.store.results import Change


class DagsMixin(TriggersMixin):
    @engine_.retry_transient
    def set_paused(self, dag_id: str, paused: bool) -> triggers.EmitResult:
        """Pause or unpause; creates the DAG's row when no coordinator registered it yet.

        Unpausing consumes the DAG's pending events in the same transaction, so an event
        that arrived while it was paused is neither lost nor left for a later event to
        pick up: the runs they start (or queue, for a run slot) are returned, ``started``
        being those whose first tasks the caller sends. ``event_id`` is ''."""
        now = _now()
        with self._tx() as conn:
            dag_rows.set_paused(conn, dag_id, paused, now)
            if paused:
                return triggers.EmitResult("", [], 0)
            change = Change("")
            made = triggers.consume(conn, dag_id, resolve=self._compiled_in, now=now,
                                    change=change, adopt=True)
        return triggers.EmitResult("", made, 0, list(change.started_runs))

    @engine_.retry_transient
    def is_paused(self, dag_id: str) -> bool:
        """False when the DAG has no row."""
        with self._tx(write=False) as conn:
            return dag_rows.is_paused(conn, dag_id)

    @engine_.retry_transient
    def dag_states(self, dag_ids: Sequence[str] | None = None) -> list[records.DagState]:
        with self._tx(write=False) as conn:
            return dag_rows.states(conn, dag_ids)
