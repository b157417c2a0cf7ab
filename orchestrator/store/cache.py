"""A least-recently-used cache bounded in entries and in bytes (the run headers a
process keeps: their params are up to ORCH_MAX_PARAMS_BYTES each, so a count alone
let 20 runs of 10 MB params take a worker from 204 to 558 MB)."""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLRU(Generic[V]):
    """Values with their size in bytes, as the caller measured it. A value bigger than
    the whole budget is never kept (the caller reads it again next time)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.total = 0
        """Bytes of the values kept now; never above ``max_bytes``."""
        self._items: collections.OrderedDict[str, tuple[V, int]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: str, value: V, size: int) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.total -= old[1]
        if size > self.max_bytes or self.max_entries < 1:
            return
        self._items[key] = (value, size)
        self.total += size
        while self.total > self.max_bytes or len(self._items) > self.max_entries:
            _, (_, dropped) = self._items.popitem(last=False)
            self.total -= dropped
