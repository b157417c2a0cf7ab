"""Acts on what the database says is stuck: lost messages, lost workers, overdue work.

Redis is transport and may lose messages (a broker restarted empty) or the worker that
held one (SIGKILL, a lost machine). The database is the source of truth, and each pass:

- fails runs past their DAG's timeout, terminating what still runs;
- fails attempts past their task's timeout that their worker did not stop (it is gone,
  or hung), retrying them if they have retries left;
- sends again, with the same attempt number, a queued task no worker took within
  ``requeue_after`` and a running task whose lease expired. The claim decides what
  happens: a queued attempt runs once, an expired running attempt is taken over as the
  next attempt, and a duplicate is dropped. Leases are judged only once the database has
  been reachable for a whole lease: after an outage, live workers renew theirs first.

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
import time
import uuid

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes
from orchestrator.model import retries
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.settings import Settings
from orchestrator.store import Overdue, Stalled

log = logging.getLogger(__name__)

LEASE = "reconciler"
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""A ``lost_before`` that matches no running task: none is judged lost this pass."""


class Reconciler:
    def __init__(self, settings: Settings, outcomes: Outcomes, name: str | None = None) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._seen_since: float | None = None
        """Since when (monotonic) each pass reached the database; None after one failed."""

    def leads(self) -> bool:
        """Whether this coordinator may act now (always, except on SQLite: the lease)."""
        return not self.store.single_writer or self.store.lead(
            LEASE, self.name, ttl=self.settings.worker.lease_seconds)

    def tick(self) -> int:
        """One pass; returns how many tasks were sent again."""
        try:
            return self._tick()
        except Exception:
            self._seen_since = None
            raise

    def _tick(self) -> int:
        if not self.leads():
            return 0
        lease = self.settings.worker.lease_seconds
        if self._seen_since is None:
            self._seen_since = time.monotonic()
        now = dt.datetime.now(dt.UTC)
        self.store.fill_pools()  # what it admits is marked unsent: sent below
        self._time_out_runs()
        for o in self.store.overdue_tasks(grace=self.settings.worker.time_limit_grace):
            self._time_out(o)
        # While this coordinator could not reach the database, workers may not have been
        # able to either: their leases ran out unrenewed. Call a lease lost only once the
        # database has been reachable for a whole lease, time for live workers to renew.
        judge_leases = time.monotonic() - self._seen_since >= lease
        stalled = self.store.take_stalled(
            queued_before=now - dt.timedelta(seconds=self.settings.coordinator.requeue_after),
            lost_before=now - dt.timedelta(seconds=lease) if judge_leases else NEVER)
        sent = 0
        for i, s in enumerate(stalled):
            try:
                sent += self._resend(s)
            except errors.TransportError as exc:
                # Taking them moved their queued_at on: without the unsent mark the rest
                # would wait the whole requeue interval again (the failed one has it).
                log.warning("broker unreachable (%s): %d resends wait for the next pass",
                            exc, len(stalled) - i)
                for rest in stalled[i + 1:]:
                    self.store.mark_unsent(rest.run_id, [rest.task_id])
                break
        return sent

    def stop(self) -> None:
        if self.store.single_writer:
            self.store.release(LEASE, self.name)

    def _dag(self, run_id: str) -> CompiledDag | None:
        try:
            return self.outcomes.dag_of(self.store.header(run_id))
        except errors.NotFound as exc:
            log.warning("run %s: %s", run_id, exc)
            return None

    def _time_out_runs(self) -> None:
        """Fail runs past their DAG's timeout, even when no worker is left to notice."""
        for run_id in self.store.overdue_runs():
            dag = self._dag(run_id)
            try:
                change = self.store.cancel(run_id, state=RunState.FAILED,
                                           reason="the run exceeded its DAG's timeout")
            except errors.Conflict:
                continue  # it ended meanwhile, or another coordinator got there first
            log.info("run %s timed out", run_id)
            if dag is not None:
                self.outcomes.apply(dag, change)

    def _time_out(self, o: Overdue) -> None:
        """Fail an attempt its worker should have stopped at its timeout, as the worker
        would have: a retry if it has one left, else its downstream tasks decide."""
        dag = self._dag(o.run_id)
        if dag is None:
            return
        t = dag.spec.task(o.task_id)
        change = self.store.fail(
            o.run_id, o.task_id, o.attempt, error_type=errors.TaskTimeout.__name__,
            message=f"exceeded its timeout of {t.timeout} s and its worker did not stop it "
                    "(gone or hung): the coordinator did",
            traceback=None, p=dag.plan,
            retry_in=retries.next_delay(t, o.attempt, o.lost_attempts, o.max_attempts))
        if not change.applied:
            return  # it ended meanwhile
        log.info("%s.%s of run %s attempt %s timed out", o.dag_id, o.task_id, o.run_id,
                 o.attempt)
        if o.celery_id:
            change.terminate.append(o.celery_id)
        self.outcomes.apply(dag, change)

    def _resend(self, s: Stalled) -> bool:
        dag = self._dag(s.run_id)
        if dag is None:
            return False
        log.info("resending %s.%s of run %s (attempt %s, %s)", s.dag_id, s.task_id,
                 s.run_id, s.attempt, s.state)
        self.outcomes.send(dag, s.run_id, [(s.task_id, s.attempt)])
        self.outcomes.resent(dag.id, s.run_id, s.task_id, s.attempt)
        return True
