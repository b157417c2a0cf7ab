"""The store's alerts part: deadlines missed, and the outbox's claim, finish and reads."""

from __future__ import annotations

import datetime as dt
import re

from orchestrator import errors
from orchestrator.model import records
from orchestrator.model.notify import Event
from orchestrator.store import engine as engine_
from orchestrator.store import outbox, sql_outbox
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.results import Outgoing

_NOTIFICATION_PREFIX = re.compile(r"n[0-9a-f]{0,31}")


class OutboxMixin(StoreBase):
    @engine_.retry_transient
    def miss_deadlines(self, limit: int = 100) -> int:
        """Mark the open deadlines past due as missed, writing their alerts in the same
        transaction; a run's end closes its deadline first or not at all. Returns how
        many were missed."""
        now = _now()
        with self._tx(write=False) as conn:
            if conn.execute(sql_outbox.ANY_OVERDUE, {"b_now": now}).first() is None:
                return 0
        with self._tx() as conn:
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

    def notifications(self, run_id: str | None = None, *, state: str | None = None,
                      limit: int = 100) -> list[records.Notification]:
        """A run's notifications, oldest first, or the latest ``limit`` of all, newest
        first; ``state`` keeps those in it (one of records.NOTIFICATION_STATES)."""
        if state is not None and state not in records.NOTIFICATION_STATES:
            raise errors.InvalidArgument(f"unknown notification state {state!r}; one of: "
                                         f"{', '.join(records.NOTIFICATION_STATES)}")
        if limit < 1:
            raise errors.InvalidArgument(f"limit must be at least 1, not {limit}")
        with self._tx(write=False) as conn:
            if run_id is None:
                return outbox.recent(conn, limit, state)
            if conn.execute(sql_outbox.RUN_VERSION, {"b_run": run_id}).first() is None:
                raise errors.UnknownRun(f"no run {run_id!r}")
            # a run has a handful: filtered here rather than by one more statement
            return [n for n in outbox.of_run(conn, run_id) if state in (None, n.state)]

    def notification(self, notification_id: str) -> records.Notification:
        """One notification with its tries, by its id or a unique prefix of it (ids are
        ``n`` and 31 hex digits)."""
        if not _NOTIFICATION_PREFIX.fullmatch(notification_id):
            raise errors.UnknownNotification(
                f"no notification {notification_id[:40]!r}: notification ids are 'n' and "
                "31 hex digits (a unique prefix of one will do)")
        with self._tx(write=False) as conn:
            found = outbox.with_prefix(conn, notification_id, 6)
            if not found:
                raise errors.UnknownNotification(f"no notification {notification_id!r}")
            if len(found) > 1 and notification_id not in found:
                shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
                raise errors.UnknownNotification(
                    f"notification id prefix {notification_id!r} matches several: {shown}")
            one = outbox.listed(conn, notification_id if notification_id in found
                                else found[0])
            if one is None:  # gone between the two reads (its run was deleted)
                raise errors.UnknownNotification(f"no notification {notification_id!r}")
            return one
