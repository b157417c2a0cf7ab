"""``orchestrator coordinator``: the reconciler's loop, until told to stop.

A coordinator needs the database and the broker, not the DAG folder: it plans from the
DAG versions stored with the runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orchestrator.coordinator.reconciler import Reconciler
from orchestrator.coordinator.scheduler import Scheduler
from orchestrator.settings import Settings
from orchestrator.wiring import Wiring

log = logging.getLogger(__name__)


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """Reconcile every ``reconcile_interval`` seconds and fire schedules every
    ``schedule_interval`` seconds, until ``stop`` is set."""
    with Wiring(settings) as wiring:
        wiring.dispatcher  # noqa: B018 -- fail now, in one line, without a broker URL
        reconciler = Reconciler(settings, wiring.outcomes)
        scheduler = Scheduler(settings, wiring.outcomes, bag=lambda: wiring.bag)
        log.info("coordinator %s reconciling every %s s, scheduling every %s s",
                 reconciler.name, settings.coordinator.reconcile_interval,
                 settings.coordinator.schedule_interval)
        passes: list[tuple[str, Callable[[], object], float]] = [
            ("reconciler", reconciler.tick, settings.coordinator.reconcile_interval),
            ("scheduler", scheduler.tick, settings.coordinator.schedule_interval)]
        due = [time.monotonic()] * len(passes)
        try:
            while not stop.is_set():
                for i, (name, run, every) in enumerate(passes):
                    if time.monotonic() < due[i]:
                        continue
                    try:
                        run()
                    except Exception:  # a failed pass (database or broker down) is retried
                        log.exception("%s pass failed", name)
                    due[i] = time.monotonic() + every
                stop.wait(max(0.0, min(due) - time.monotonic()))
        finally:
            reconciler.stop()
