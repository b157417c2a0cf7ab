"""The store's sensor calls: reschedule a poke that found nothing, wake the due ones."""

from __future__ import annotations

import time

from orchestrator.store import engine as engine_
from orchestrator.store import sensors
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.results import Change


class SensorsMixin(StoreBase):
    @engine_.retry_transient
    def reschedule(self, run_id: str, task_id: str, attempt: int, token: str | None, *,
                   poke_interval: float, timeout: float, started: float,
                   ) -> tuple[sensors.Poke, Change]:
        """End this poke as rescheduled and put the sensor to sleep for ``poke_interval``;
        TIMED_OUT (nothing written) when its next poke would start past its timeout
        (``started``, the first poke's wall time, plus ``timeout``)."""
        with self._tx() as conn:
            return sensors.reschedule(conn, run_id, task_id, attempt, token,
                                      poke_interval=poke_interval, timeout=timeout,
                                      started=started, wall=time.time(), now=_now())

    @engine_.retry_transient
    def wake_sensors(self, limit: int = 100) -> list[sensors.Due]:
        with self._tx() as conn:
            return sensors.wake(conn, _now(), limit)
