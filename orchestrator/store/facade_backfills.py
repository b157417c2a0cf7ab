"""The store's backfills part: accept one (its first runs started), read, cancel."""

from __future__ import annotations

import datetime as dt

from orchestrator.model import backfill, records
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import backfills, runs
from orchestrator.store import engine as engine_
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.results import Change


class BackfillsMixin(StoreBase):
    @engine_.retry_transient
    def create_backfill(self, dag: CompiledDag, win: backfill.Window, *, start: dt.datetime,
                        end: dt.datetime, reprocess: str, max_active: int,
                        ) -> tuple[str, Change]:
        """Write the backfill of ``win`` (checked by the caller) and start its first
        ``max_active`` runs in the same transaction: (its id, what it started)."""
        change = Change("")
        with self._tx() as conn:
            runs.put_version(conn, dag, _now())
            bf_id = backfills.create(conn, dag, win, start=start, end=end,
                                     reprocess=reprocess, max_active=max_active, now=_now(),
                                     change=change)
        return bf_id, change

    def cancel_backfill(self, bf_id: str) -> list[str]:
        """No more runs; returns its runs still going (for the caller to cancel)."""
        with self._tx() as conn:
            return backfills.cancel(conn, bf_id, _now())

    @engine_.retry_transient
    def backfills(self, dag_id: str | None = None, limit: int = 50) -> list[records.Backfill]:
        with self._tx(write=False) as conn:
            return backfills.listing(conn, dag_id, limit)

    @engine_.retry_transient
    def backfill(self, bf_id: str) -> records.Backfill:
        with self._tx(write=False) as conn:
            return backfills.get(conn, bf_id)
