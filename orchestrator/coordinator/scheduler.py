"""Fires the DAGs' schedules: each pass registers the DAG folder's DAGs (when it changed),
fires what is due by the database's rows, and sends the first tasks of the runs created.

Several coordinators may run it at once: each tick is fired by a compare-and-set on the
DAG's row in the transaction that inserts its run, so a tick makes one run whichever
coordinator fires it (and one killed mid-pass leaves its row for the next). The clock is
injected, so tests can run schedules over simulated time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from orchestrator import errors
from orchestrator.authoring.discovery import DagBag
from orchestrator.control.outcomes import Outcomes
from orchestrator.coordinator import sensors
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: Settings, outcomes: Outcomes,
                 bag: Callable[[], DagBag] | None = None,
                 clock: Callable[[], float] = time.time, limit: int = 100) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store
        self._bag = bag
        self.clock = clock
        self.limit = limit
        self._registered = False

    def register(self) -> None:
        """Register the folder's DAGs: on the first pass, then only when a file changed
        (and again at each pass until a registration succeeds: the bag reports a change
        once, so a pass that failed to register it must not forget it)."""
        if self._bag is None:
            return
        bag = self._bag()
        if bag.refresh():
            self._registered = False
        if not self._registered and bag.dags:
            self.store.register_dags(list(bag.dags.values()),
                                     now=dt.datetime.fromtimestamp(self.clock(), dt.UTC))
            self._registered = True

    def tick(self) -> int:
        """One pass; returns how many runs it created. Sensors whose next poke is due are
        sent in the same pass, so a poke is at most ``ORCH_SCHEDULE_INTERVAL`` late."""
        self.register()
        sensors.wake(self.outcomes)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        fired = self.store.fire_due(now, grace=self.settings.coordinator.misfire_grace,
                                    limit=self.limit)
        for run in fired:
            if run.queued:
                continue  # started, and sent, by the transaction that frees its slot
            dag = self.store.compiled(run.version)
            # what waits for a pool slot is sent by the transaction that frees one
            roots = self.store.queued_tasks(run.run_id)
            self.outcomes.run_started(dag, run.run_id, roots)
            try:
                self.outcomes.send(dag, run.run_id, roots)
            except errors.TransportError:
                log.warning("run %s of %s is created; its first tasks are sent later",
                            run.run_id, run.dag_id)
        return len(fired)
