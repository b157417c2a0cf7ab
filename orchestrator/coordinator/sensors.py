"""Wakes sensors whose next poke is due: the database holds the wait, not a worker.

Each pass queues the due ones (compare-and-set up_for_reschedule -> queued, disjoint rows
per coordinator under SKIP LOCKED on PostgreSQL, the reconciler's lease on SQLite) and
sends them. One past its timeout is sent anyway: its poke decides, and fails it with
SensorTimeout if its condition is still unmet."""

from __future__ import annotations

import logging

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes

log = logging.getLogger(__name__)


def wake(outcomes: Outcomes) -> int:
    """One pass; returns how many sensors were sent."""
    sent = 0
    for due in outcomes.store.wake_sensors():
        try:
            dag = outcomes.dag_of(outcomes.store.header(due.run_id))
        except errors.NotFound as exc:
            log.warning("sensor %s of run %s: %s", due.task_id, due.run_id, exc)
            continue
        try:
            outcomes.send(dag, due.run_id, [(due.task_id, due.attempt)])
        except errors.TransportError as exc:  # marked unsent: the reconciler sends it
            log.warning("could not send sensor %s of run %s: %s", due.task_id, due.run_id,
                        exc)
            continue
        sent += 1
    return sent
