"""The store's part for named events and asset events (see :mod:`.triggers`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from orchestrator.model import records
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import engine as engine_
from orchestrator.store import sql_triggers, triggers, versions
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.results import Change


class TriggersMixin(StoreBase):
    def _compiled_in(self, conn: Connection, version: str) -> CompiledDag | None:
        """A stored version, compiled once per process, read in the caller's transaction."""
        return versions.compiled(conn, version)

    @engine_.retry_transient
    def emit_event(self, name: str, payload: Any = None, *,
                   max_bytes: int | None = None) -> triggers.EmitResult:
        """Store a named event and, in the same transaction, start (or queue) one run of
        every subscriber that is not paused; it stays pending for the others. A bad name
        or payload is InvalidArgument with nothing written."""
        triggers.check(name, payload, max_bytes)
        with self._tx() as conn:
            change = Change("")
            return triggers.emit(conn, "event", [name], payload, resolve=self._compiled_in,
                                 now=_now(), change=change)[0]

    @engine_.retry_transient
    def consume_pending(self, dag_id: str) -> triggers.EmitResult:
        """Consume ``dag_id``'s pending events (and take over those of its triggers that
        had no subscriber): call after it is unpaused or registered. ``event_id`` is ''."""
        with self._tx() as conn:
            change = Change("")
            made = triggers.consume(conn, dag_id, resolve=self._compiled_in, now=_now(),
                                    change=change, adopt=True)
        return triggers.EmitResult("", made, 0, list(change.started_runs))

    def events(self, kind: str | None = None, name: str | None = None,
               pending_only: bool = False, limit: int = 100) -> list[records.Event]:
        """Events newest first; ``pending_only``: those some subscriber (or nobody yet)
        has not consumed."""
        with self._tx(write=False) as conn:
            q = sql_triggers.LIST_PENDING if pending_only else sql_triggers.LIST_EVENTS
            rows = conn.execute(q, {"b_kind": kind, "b_name": name,
                                    "b_limit": limit}).all()
            consumers: dict[str, list[tuple[str, str | None]]] = {}
            if rows:
                for r in conn.execute(sql_triggers.QUEUE_OF, {"b_ids": [r.id for r in rows]}):
                    consumers.setdefault(r.event_id, []).append((r.dag_id, r.run_id))
        return [records.Event(id=r.id, kind=r.kind, name=r.name, payload=r.payload,
                              created_at=r.created_at, run_id=r.run_id, task_id=r.task_id,
                              consumers=consumers.get(r.id, [])) for r in rows]
