"""The store's alerts part: deadlines missed, and the outbox's claim, finish and reads."""

from __future__ import annotations

import datetime as dt

from orchestrator import errors
from orchestrator.model import records
from orchestrator.model.notify import Event
from orchestrator.store import engine as engine_
from orchestrator.store import outbox, sql_outbox
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.results import Outgoing


class OutboxMixin(StoreBase):
    @engine_.retry_transient
    def miss_deadlines(self, limit: int = 100) -> int:
        """Mark the open deadlines past due as missed, writing their alerts in the same
        transaction; a run's end closes its deadline first or not at all. Returns how
        many were missed."""
        with self._tx() as conn:
            now = _now()
            missed = outbox.miss_deadlines(conn, now, limit)
            for run_id, dag_id, due in missed:
                version = conn.execute(sql_outbox.RUN_VERSION, {"b_run": run_id}).scalar()
                alerts = self.compiled(version).plan.alerts if version is not None else None
                outbox.write(conn, dag_id, run_id, [outbox.Happened(
                    Event.DEADLINE_MISSED, error=f"the run had not ended by its deadline, "
                    f"{due.isoformat()}")], alerts, self.alert_rules, now)
            return len(missed)

    @engine_.retry_transient
    def claim_notifications(self, holder: str, *, limit: int, lease: float
                            ) -> list[Outgoing]:
        with self._tx() as conn:
            return outbox.claim(conn, holder, limit=limit, lease=lease, now=_now())

    @engine_.retry_transient
    def finish_notification(self, out: Outgoing, *, delivered: bool, status: int | None = None,
                            detail: str | None = None,
                            retry_at: dt.datetime | None = None) -> bool:
        with self._tx() as conn:
            return outbox.finish(conn, out, delivered=delivered, status=status,
                                 detail=detail, retry_at=retry_at, now=_now())

    def sending(self, notification_id: str) -> Outgoing | None:
        """The notification, if a sender holds it now (a callback's worker checks)."""
        with self._tx(write=False) as conn:
            return outbox.one(conn, notification_id)

    def notifications(self, run_id: str | None = None, *, limit: int = 100
                      ) -> list[records.Notification]:
        """A run's notifications, oldest first, or the latest ``limit`` of all."""
        with self._tx(write=False) as conn:
            if run_id is None:
                return outbox.recent(conn, limit)
            if conn.execute(sql_outbox.RUN_VERSION, {"b_run": run_id}).first() is None:
                raise errors.UnknownRun(f"no run {run_id!r}")
            return outbox.of_run(conn, run_id)
