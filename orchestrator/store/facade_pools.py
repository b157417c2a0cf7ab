"""The store's pools part: define, list and delete slot pools."""

from __future__ import annotations

from orchestrator.model import records
from orchestrator.store import engine as engine_
from orchestrator.store import pools
from orchestrator.store.base import StoreBase, _now


class PoolsMixin(StoreBase):
    def set_pool(self, name: str, slots: int | None,
                 description: str | None = None) -> records.Pool:
        """Create a pool or change its slots (None: unbounded); returns it with its usage."""
        pools.check(name, slots, description)
        with self._tx() as conn:
            return pools.set_pool(conn, name, slots, description, _now())

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
