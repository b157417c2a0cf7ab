"""Acts on what the database says is stuck: lost messages, lost workers, overdue work.

Redis is transport and may lose messages (a broker restarted empty) or the worker that
held one (SIGKILL, a lost machine). The database is the source of truth, and each pass:

- fails runs past their DAG's timeout, terminating what still runs;
- fails attempts past their task's timeout that their worker did not stop (it is gone,
  or hung), retrying them if they have retries left;
- sends again, with the same attempt number, a queued task no worker took within
  ``requeue_after`` and a running task whose lease expired. The claim decides what
  happens: a queued attempt runs once, an expired running attempt is taken over as the
  next attempt, and a duplicate is dropped.

Several coordinators may run at once. On PostgreSQL they share the work: each resend is
taken under ``FOR UPDATE SKIP LOCKED``, so two never take the same row. On SQLite, which
has one writer anyway, one coordinator at a time holds the ``reconciler`` lease and the
others stand by until it stops renewing it. Every transition is a compare-and-set, so a
race between a coordinator and a worker is decided once either way.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.control import outcomes as sending
from orchestrator.model import plan, spec
from orchestrator.model.states import RunState
from orchestrator.settings import Settings
from orchestrator.store import Overdue, Stalled, Store
from orchestrator.transport import dispatch

log = logging.getLogger(__name__)

LEASE = "reconciler"


class Reconciler:
    def __init__(self, settings: Settings, store: Store, dispatcher: dispatch.Dispatcher,
                 bag: discovery.DagBag, name: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self.sender = sending.Sender(store, dispatcher)
        self.bag = bag
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._plans: dict[str, plan.Plan] = {}

    def leads(self) -> bool:
        """Whether this coordinator may act now (always, except on SQLite: the lease)."""
        return not self.store.single_writer or self.store.lead(
            LEASE, self.name, ttl=self.settings.lease_seconds)

    def tick(self) -> int:
        """One pass; returns how many tasks were sent again."""
        if not self.leads():
            return 0
        now = dt.datetime.now(dt.UTC)
        self._time_out_runs()
        for o in self.store.overdue_tasks(grace=self.settings.time_limit_grace):
            self._time_out(o)
        stalled = self.store.take_stalled(
            queued_before=now - dt.timedelta(seconds=self.settings.requeue_after),
            lost_before=now - dt.timedelta(seconds=self.settings.lease_seconds))
        return sum(self._resend(s) for s in stalled)

    def stop(self) -> None:
        if self.store.single_writer:
            self.store.release(LEASE, self.name)

    def _dag(self, run_id: str, dag_id: str) -> tuple[spec.DagSpec, plan.Plan] | None:
        try:
            dag = self.bag.get(dag_id)
        except errors.UnknownDag:
            log.warning("run %s: DAG %r is not in this coordinator's folder", run_id, dag_id)
            return None
        p = self._plans.get(dag.id) or self._plans.setdefault(dag.id, plan.build(dag))
        return dag, p

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

    def _time_out(self, o: Overdue) -> None:
        """Fail an attempt its worker should have stopped at its timeout, as the worker
        would have: a retry if it has one left, else its downstream tasks decide."""
        found = self._dag(o.run_id, o.dag_id)
        if found is None:
            return
        dag, p = found
        used = o.attempt - o.lost_attempts
        adv = self.store.fail(
            o.run_id, o.task_id, o.attempt, error_type="TaskTimeout",
            message=f"exceeded its timeout of {dag.task(o.task_id).timeout} s and its "
                    "worker did not stop it (gone or hung): the coordinator did",
            traceback=None, retry=used < o.max_attempts, p=p)
        if not adv.applied:
            return  # it ended meanwhile
        log.info("%s.%s of run %s attempt %s timed out", o.dag_id, o.task_id, o.run_id,
                 o.attempt)
        if o.celery_id:
            self.dispatcher.terminate([o.celery_id])
        self.sender.after_failure(dag, p, o.run_id, o.task_id, adv, used=used,
                                  max_attempts=o.max_attempts)

    def _resend(self, s: Stalled) -> bool:
        found = self._dag(s.run_id, s.dag_id)
        if found is None:
            return False
        dag, p = found
        log.info("resending %s.%s of run %s (attempt %s, %s)", s.dag_id, s.task_id,
                 s.run_id, s.attempt, s.state)
        self.sender.send(dag, p, s.run_id, [(s.task_id, s.attempt)])
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
        try:
            reconciler.stop()
        finally:
            store.dispose()
            app.close()
