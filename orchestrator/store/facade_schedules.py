"""The store's scheduler part: register the DAG folder's DAGs, fire due schedules."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from orchestrator import errors
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import engine as engine_
from orchestrator.store import schedules
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.schedules import Fired

log = logging.getLogger(__name__)


class SchedulesMixin(StoreBase):
    def register_dags(self, dags: Sequence[CompiledDag], *,
                      now: dt.datetime | None = None) -> None:
        """Upsert each DAG's row (version, schedule, limits) and its event/asset triggers,
        one transaction each. A changed schedule fires next at its first tick after
        ``now`` (the scheduler's clock; default: this machine's); an unchanged one keeps
        its next fire. Safe when several processes register."""
        now = now or _now()
        for dag in dags:
            self._register(dag, now)

    @engine_.retry_transient
    def _register(self, dag: CompiledDag, now: dt.datetime) -> None:
        with self._tx() as conn:
            schedules.register(conn, dag, now, version_stored=dag.version in self._versions)
        self._versions.setdefault(dag.version, dag)

    def fire_due(self, now: dt.datetime, *, grace: float, limit: int = 100) -> list[Fired]:
        """One pass over the due timed schedules (``now``: the scheduler's clock): each
        DAG's ticks fired and its next fire moved on in one transaction. Returns the runs
        created; those not ``queued`` have their initial tasks queued, to send."""
        with self._tx(write=False) as conn:
            candidates = schedules.due(conn, now, limit)
        out: list[Fired] = []
        for dag_id, version in candidates:
            try:
                if version is not None:
                    self.compiled(version)  # read before the write transaction, once
                out += self._fire(dag_id, now, grace)
            except IntegrityError:
                continue  # another coordinator created the run first: it fired the tick
            except errors.OrchestratorError as exc:  # one bad row must not stop the rest
                log.warning("cannot fire the schedule of DAG %r: %s", dag_id, exc)
        return out

    @engine_.retry_transient
    def _fire(self, dag_id: str, now: dt.datetime, grace: float) -> list[Fired]:
        with self._tx() as conn:
            return schedules.fire(conn, dag_id, now, grace=grace, compiled=self.compiled,
                                  created_at=_now())
