"""Where a store decision becomes messages and events, for workers, coordinators and
clients alike: send what became ready, schedule the retry, terminate what must stop,
wake whoever waits on the run, and tell the hooks.

The store's transaction decides (:class:`~orchestrator.store.Change`); this is the one
place that follows it up. A message that cannot be sent leaves its task marked unsent,
and the coordinator's next pass sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from orchestrator import errors
from orchestrator.authoring.discovery import DagBag
from orchestrator.control.hooks import AttemptEvent, Hooks, RunEvent, TaskEvent
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import Change, Claim, RunHeader, Store
from orchestrator.transport import wakeups
from orchestrator.transport.dispatch import Dispatcher

log = logging.getLogger(__name__)


class Outcomes:
    def __init__(self, store: Store, dispatcher: Callable[[], Dispatcher], hooks: Hooks,
                 bag: Callable[[], DagBag]) -> None:
        self.store = store
        self._dispatcher = dispatcher
        self.hooks = hooks
        self._bag = bag

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher()

    def dag_of(self, header: RunHeader) -> CompiledDag:
        """The DAG a run was submitted with (its stored version), whatever the files say
        now; a run older than versions uses the DAG folder's."""
        if header.version is not None:
            return self.store.compiled(header.version)
        return self._bag().get(header.dag_id)

    # -- messages ----------------------------------------------------------------------------

    def send(self, dag: CompiledDag, run_id: str, heads: Sequence[tuple[str, int]],
             countdown: float | None = None) -> None:
        """Send the segments starting at ``heads``; their chain links carry their own
        current attempts (a rerun may have moved them on). Raises TransportError after
        marking the heads unsent, for the coordinator to send."""
        if not heads:
            return
        tails = [n for h, _ in heads for n in dag.plan.segment_from(h)[1:]]
        tail_attempts = self.store.attempts_of(run_id, tails) if tails else {}
        try:
            self.dispatcher.send(dag, run_id, heads, tail_attempts, countdown=countdown)
        except errors.TransportError:
            self.store.mark_unsent(run_id, [h for h, _ in heads])
            raise

    def apply(self, dag: CompiledDag, change: Change, *, chained: str | None = None) -> None:
        """Follow one transaction's change: send what became ready (but ``chained``, the
        next link Celery's chain delivers), schedule its retry, terminate, wake waiters,
        then tell the hooks."""
        if not change.applied:
            return
        run_id = change.run_id
        try:
            self.send(dag, run_id, [r for r in change.queued if r[0] != chained])
            if change.retry is not None:
                task_id, attempt, delay = change.retry
                self.send(dag, run_id, [(task_id, attempt)], countdown=delay)
            if change.started_runs or change.elsewhere:
                self.send_elsewhere(change)
        finally:
            if change.terminate:
                self._terminate(change.terminate)
            if change.run_state is not None:
                self.woke(run_id, change.run_state)
            if change.notified:
                wakeups.alerts_written(self.dispatcher.app.conf.broker_url)
            if self.hooks:
                self._announce(dag.id, change)

    def send_elsewhere(self, change: Change) -> None:
        """Send what this transaction made ready in other runs: the queued tasks of runs
        it started, and waiters of other runs it gave a freed slot. Each run is tried on
        its own: one that cannot be sent is marked unsent for the coordinator."""
        heads: dict[str, list[tuple[str, int]]] = {}
        for run_id in change.started_runs:
            heads.setdefault(run_id, []).extend(self.store.queued_tasks(run_id))
        for run_id, task_id, attempt in change.elsewhere:
            heads.setdefault(run_id, []).append((task_id, attempt))
        failed: errors.TransportError | None = None
        for run_id, queued in heads.items():
            header = self.store.header(run_id)
            other = self.dag_of(header)
            if run_id in change.started_runs and self.hooks:
                self.hooks.run_started(RunEvent(other.id, run_id, RunState.RUNNING))
            try:
                self.send(other, run_id, list(dict.fromkeys(queued)))
            except errors.TransportError as exc:
                failed = exc
        if failed is not None:
            raise failed

    def _terminate(self, celery_ids: Sequence[str]) -> None:
        try:
            self.dispatcher.terminate(celery_ids)
        except errors.TransportError:
            # Their tasks are already cancelled in the database: whatever they record
            # later is refused, so a missed termination costs only the CPU they use.
            log.warning("could not ask workers to terminate %s", list(celery_ids))

    def woke(self, run_id: str, state: RunState) -> None:
        """Wake clients waiting on this run (they fall back to polling the database)."""
        url = self.dispatcher.app.conf.broker_url
        wakeups.publish(url, run_id, state)

    # -- hooks -------------------------------------------------------------------------------

    def _announce(self, dag_id: str, change: Change) -> None:
        h, run_id = self.hooks, change.run_id
        for e in change.ended:
            h.attempt_finished(AttemptEvent(dag_id, run_id, e.task_id, e.attempt, e.outcome,
                                            e.error_type))
        if change.retry is not None:
            task_id, attempt, delay = change.retry
            h.task_queued(TaskEvent(dag_id, run_id, task_id, attempt, TaskState.QUEUED,
                                    "retry", delay))
        for task_id, attempt in change.queued:
            h.task_queued(TaskEvent(dag_id, run_id, task_id, attempt, TaskState.QUEUED,
                                    "ready"))
        for task_id, state in change.finished:
            h.task_finished(TaskEvent(dag_id, run_id, task_id, None, state))
        if change.run_state is not None:
            h.run_finished(RunEvent(dag_id, run_id, change.run_state))

    def started(self, dag_id: str, run_id: str, task_id: str, claim: Claim,
                worker: str) -> None:
        """A claim committed: the attempt it took over (if any) was lost, this one runs."""
        if not self.hooks:
            return
        if claim.took_over is not None:
            self.hooks.attempt_finished(AttemptEvent(
                dag_id, run_id, task_id, claim.took_over, AttemptOutcome.LOST,
                errors.WorkerLost.__name__))
        self.hooks.attempt_started(AttemptEvent(dag_id, run_id, task_id, claim.attempt,
                                                AttemptOutcome.RUNNING, worker=worker))

    def run_started(self, dag: CompiledDag, run_id: str, queued: Sequence[tuple[str, int]]
                    ) -> None:
        if not self.hooks:
            return
        self.hooks.run_started(RunEvent(dag.id, run_id, RunState.RUNNING))
        for task_id, attempt in queued:
            self.hooks.task_queued(TaskEvent(dag.id, run_id, task_id, attempt,
                                             TaskState.QUEUED, "ready"))

    def resent(self, dag_id: str, run_id: str, task_id: str, attempt: int) -> None:
        if self.hooks:
            self.hooks.task_queued(TaskEvent(dag_id, run_id, task_id, attempt,
                                             TaskState.QUEUED, "resend"))
