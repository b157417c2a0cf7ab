"""Sends again what the database says is ready or running but is not progressing.

Redis is transport and may lose messages (a broker restarted empty) or the worker that
held one (SIGKILL, a lost machine). The database is the source of truth: a queued task
that no worker took within ``requeue_after``, and a running task whose lease expired,
are sent again with the same attempt number. The claim decides what happens: a queued
attempt runs once, an expired running attempt is taken over as the next attempt, and a
duplicate is dropped. Each decision to resend is a compare-and-set on the task's row,
so several coordinators can run at once without deciding the same resend twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from orchestrator import discovery, dispatch, errors, plan
from orchestrator.settings import Settings
from orchestrator.states import RunState
from orchestrator.store import Stalled, Store

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, settings: Settings, store: Store, dispatcher: dispatch.Dispatcher,
                 bag: discovery.DagBag) -> None:
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self.bag = bag
        self._plans: dict[str, plan.Plan] = {}

    def tick(self) -> int:
        """One pass; returns how many tasks were sent again."""
        now = dt.datetime.now(dt.UTC)
        self._time_out_runs()
        stalled = self.store.stalled(
            queued_before=now - dt.timedelta(seconds=self.settings.requeue_after),
            lost_before=now - dt.timedelta(seconds=self.settings.lease_seconds))
        return sum(self._resend(s) for s in stalled)

    def _time_out_runs(self) -> None:
        """Fail runs past their DAG's timeout, even when no worker is left to notice."""
        for run_id in self.store.overdue_runs():
            try:
                running = self.store.cancel(run_id, state=RunState.FAILED,
                                            reason="the run exceeded its DAG's timeout")
            except errors.Conflict:
                continue  # it ended meanwhile, or another coordinator got there first
            log.info("run %s timed out", run_id)
            self.dispatcher.terminate(running)
            self.dispatcher.run_finished(run_id, RunState.FAILED)

    def _resend(self, s: Stalled) -> bool:
        try:
            dag = self.bag.get(s.dag_id)
        except errors.UnknownDag:
            log.warning("run %s: DAG %r is not in this coordinator's folder", s.run_id,
                        s.dag_id)
            return False
        if not self.store.mark_resent(s):
            return False  # another coordinator decided first, or the task moved on
        p = self._plans.get(dag.id) or self._plans.setdefault(dag.id, plan.build(dag))
        tails = list(p.segment_from(s.task_id)[1:])
        attempts = self.store.attempts_of(s.run_id, tails) if tails else {}
        log.info("resending %s.%s of run %s (attempt %s, %s)", s.dag_id, s.task_id,
                 s.run_id, s.attempt, s.state)
        self.dispatcher.send(dag, p, s.run_id, [(s.task_id, s.attempt)], attempts)
        return True


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """Reconcile every ``reconcile_interval`` seconds until ``stop`` is set."""
    if not settings.broker_url:
        raise errors.TransportError("ORCH_BROKER_URL is not set: the coordinator needs it")
    store = Store(settings.database_url)
    app = dispatch.make_producer_app(settings, settings.broker_url)
    bag = discovery.load(settings.dags_path, max_tasks=settings.max_tasks)
    reconciler = Reconciler(settings, store, dispatch.Dispatcher(app, settings), bag)
    try:
        while not stop.is_set():
            try:
                reconciler.tick()
            except Exception:  # a failed pass (database or broker down) is retried next time
                log.exception("reconciler pass failed")
            stop.wait(settings.reconcile_interval)
    finally:
        store.dispose()
        app.close()
