"""``orchestrator coordinator``: the reconciler's loop, until told to stop.

A coordinator needs the database and the broker, not the DAG folder: it plans from the
DAG versions stored with the runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from orchestrator import errors
from orchestrator.coordinator.notifier import Notifier
from orchestrator.coordinator.reconciler import Reconciler
from orchestrator.coordinator.scheduler import Scheduler
from orchestrator.observability import masking
from orchestrator.settings import Settings
from orchestrator.store.results import Outgoing
from orchestrator.wiring import Wiring

log = logging.getLogger(__name__)


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """Reconcile every ``reconcile_interval`` seconds and fire schedules every
    ``schedule_interval`` seconds, until ``stop`` is set."""
    with Wiring(settings) as wiring:
        wiring.dispatcher  # noqa: B018 -- fail now, in one line, without a broker URL
        reconciler = Reconciler(settings, wiring.outcomes)
        scheduler = Scheduler(settings, wiring.outcomes, bag=lambda: wiring.bag)
        notifier = Notifier(settings, wiring.store, reconciler.name,
                            masking.masker_for(settings), _callbacks(wiring))
        notifying = threading.Thread(target=notifier.run, args=(stop, wiring.broker_url),
                                     name="notifier", daemon=True)
        notifying.start()
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
            stop.set()
            notifying.join()
            reconciler.stop()


def _callbacks(wiring: Wiring) -> Callable[[Outgoing], None]:
    """How the notifier hands a callback to a worker: on its task's queue, if it has one."""

    def send(out: Outgoing) -> None:
        queue = None
        if out.task_id is not None:
            dag = wiring.outcomes.dag_of(wiring.store.header(out.run_id))
            with contextlib.suppress(errors.NotFound):
                queue = dag.spec.task(out.task_id).queue
        wiring.dispatcher.callback(out.dag_id, out.run_id, out.id, out.tries, queue)

    return send
