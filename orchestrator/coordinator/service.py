"""``orchestrator coordinator``: the reconciler's loop, until told to stop.

A coordinator needs the database and the broker, not the DAG folder: it plans from the
DAG versions stored with the runs.
"""

from __future__ import annotations

import logging
import threading

from orchestrator.coordinator.reconciler import Reconciler
from orchestrator.settings import Settings
from orchestrator.wiring import Wiring

log = logging.getLogger(__name__)


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """Reconcile every ``reconcile_interval`` seconds until ``stop`` is set."""
    with Wiring(settings) as wiring:
        wiring.dispatcher  # noqa: B018 -- fail now, in one line, without a broker URL
        reconciler = Reconciler(settings, wiring.outcomes)
        log.info("coordinator %s reconciling every %s s", reconciler.name,
                 settings.coordinator.reconcile_interval)
        try:
            while not stop.is_set():
                try:
                    reconciler.tick()
                except Exception:  # a failed pass (database or broker down) is retried
                    log.exception("reconciler pass failed")
                stop.wait(settings.coordinator.reconcile_interval)
        finally:
            reconciler.stop()
