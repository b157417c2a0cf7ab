"""The store's pools part: define, list and delete slot pools."""

from __future__ import annotations

from sqlalchemy import Connection

from orchestrator.model import records
from orchestrator.store import admission, pools, runs
from orchestrator.store import engine as engine_
from orchestrator.store.base import StoreBase, _now


class PoolsMixin(StoreBase):
    def set_pool(self, name: str, slots: int | None,
                 description: str | None = None) -> records.Pool:
        """Create a pool or change its slots (None: unbounded); returns it with its usage."""
        pools.check(name, slots, description)
        with self._tx() as conn:
            found = pools.set_pool(conn, name, slots, description, _now())
            if name == pools.DEFAULT:
                admission.forget_default()
            # waiters a bigger pool admits are sent by the coordinator's next pass
            self._mark_unsent(conn, admission.fill(
                conn, {None if name == pools.DEFAULT else name}, _now()))
            return found

    @engine_.retry_transient
    def fill_pools(self) -> int:
        """Admit the waiters every pool has room for (the coordinator's safety net, for a
        slot freed by a process that did not yet know its pool was bounded); they are
        marked unsent, so the same pass sends them. Returns how many."""
        with self._tx() as conn:
            admitted = admission.fill_all(conn, _now())
            self._mark_unsent(conn, admitted)
            return len(admitted)

    @staticmethod
    def _mark_unsent(conn: Connection, admitted: list[admission.Admitted]) -> None:
        by_run: dict[str, list[str]] = {}
        for a in admitted:
            by_run.setdefault(a.run_id, []).append(a.task_id)
        for run_id, task_ids in by_run.items():
            runs.mark_unsent(conn, run_id, task_ids)

    def delete_pool(self, name: str) -> None:
        """Raises UnknownPool, or Conflict for the default pool or one tasks use."""
        with self._tx() as conn:
            pools.delete_pool(conn, name)

    @engine_.retry_transient
    def pools(self) -> list[records.Pool]:
        with self._tx(write=False) as conn:
            return pools.listing(conn)

    @engine_.retry_transient
    def pool(self, name: str) -> records.Pool:
        with self._tx(write=False) as conn:
            return pools.get(conn, name)
