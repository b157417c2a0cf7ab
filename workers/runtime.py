"""What a worker does with one message: claim the attempt, run it, record it, follow up.

The transaction that records a success also decides which successors became ready
(the fan-in join is a compare-and-set in the state database), and this worker sends
them: no polling loop sits between a task and the next. A successor that is the next
link of this message's chain is left to Celery, which sends it when we return.

The graph comes from the DAG version the run was submitted with (read once per run per
process); the code comes from this worker's DAG folder, looked at again when a run names
a version this worker has not loaded.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from orchestrator import errors
from orchestrator.authoring.discovery import DagBag
from orchestrator.execution import connections, operators, secret_refs
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import retries, sealed, spec, triggers, values
from orchestrator.model.compiled import CompiledDag
from orchestrator.observability import masking
from orchestrator.settings import Settings
from orchestrator.store import Busy, Change, Claim, GiveUp, NotDue, RunHeader
from orchestrator.transport import dispatch
from orchestrator.wiring import Wiring
from workers.heartbeat import Heartbeat
from workers.log_capture import LogCapture

log = logging.getLogger(__name__)

WORKER_LOSS_LIMIT = 3
"""Attempts lost with their worker before the task fails instead of running again."""


class TaskFailed(errors.OrchestratorError):
    """The task failed and has no retries left (recorded in the state database)."""


class Runtime:
    def __init__(self, settings: Settings, bag: DagBag, app: Celery,
                 rescan: Callable[[], None]) -> None:
        self.settings = settings
        self.bag = bag
        self.app = app
        self.rescan = rescan
        """Look at the DAG folder again and register the tasks it added."""
        self._pid = -1
        self._wiring: Wiring | None = None
        self._heartbeat: Heartbeat | None = None
        self._capture: LogCapture | None = None
        self._looked_for: set[str] = set()
        """Versions this process re-scanned its DAG folder for (once each)."""
        self._masker: masking.Masker | None = None
        connections.use_file(settings.connections.file)

    @property
    def wiring(self) -> Wiring:
        # One store (and heartbeat thread) per process: prefork children must not share
        # the parent's connections or threads. The parent checked the schema before.
        if self._pid != os.getpid():
            self._wiring = Wiring(self.settings, app=self.app, bag=self.bag,
                                  check_schema=False)
            self._heartbeat = Heartbeat(self._wiring.store, self.settings.worker.lease_seconds)
            self._capture = LogCapture(self._wiring.store, self.settings)
            self._pid = os.getpid()
        assert self._wiring is not None
        return self._wiring

    @property
    def masker(self) -> masking.Masker:
        """The settings' secrets (and what this process registered); an attempt adds its
        own on top (``with_secrets``)."""
        if self._masker is None:
            self._masker = masking.process_masker(self.settings)
        return self._masker

    def _dag(self, header: RunHeader) -> CompiledDag:
        version = header.version
        if (version is not None and version not in self._looked_for
                and self.bag.version_of(header.dag_id) != version):
            self._looked_for.add(version)  # the file may have changed since this loaded it
            self.rescan()
        return self.wiring.outcomes.dag_of(header)

    def _locate(self, dag_id: str, task_id: str,
                run_id: str) -> tuple[CompiledDag, spec.TaskSpec] | None:
        try:
            dag = self._dag(self.wiring.store.header(run_id))
            return dag, dag.spec.task(task_id)
        except errors.NotFound as exc:  # a message for no run or task we have: drop it
            log.warning("%s.%s of run %s: %s; dropping the message", dag_id, task_id, run_id,
                        exc)
            return None

    def execute(self, task: Task, dag_id: str, task_id: str, run_id: str, attempt: int,
                unresolved: str | None = None) -> Any:
        found = self._locate(dag_id, task_id, run_id)
        if found is None:
            task.request.chain = None
            return "unknown"
        dag, t = found
        if not _names_its_task(task, dag, t):
            return "refused"
        if t.map_over is not None and task_id == t.id and unresolved is None:
            return self._expand(task, dag, run_id, t, attempt)
        store = self.wiring.store
        worker = task.request.hostname or "?"
        claim = store.claim(run_id, task_id, attempt, worker=worker, pid=os.getpid(),
                            lease_seconds=self.settings.worker.lease_seconds,
                            data_from=t.data_from, max_lost=WORKER_LOSS_LIMIT,
                            celery_id=task.request.id, timeout=t.timeout,
                            version=self.bag.version_of(dag.id))
        if isinstance(claim, Busy):
            # Redelivered while its attempt runs under a live lease: look again once the
            # lease says whether that worker is still alive.
            task.request.chain = None
            self.wiring.outcomes.send(dag, run_id, [(task_id, claim.attempt)],
                                      countdown=max(0.1, claim.lease_expires_at - time.time())
                                      + 0.1)
            return "deferred"
        if isinstance(claim, NotDue):
            task.request.chain = None
            wait = (claim.due - dt.datetime.now(dt.UTC)).total_seconds()
            log.info("%s.%s run %s attempt %s: not due until %s, looking again then",
                     dag_id, task_id, run_id, claim.attempt, claim.due.isoformat())
            self.wiring.outcomes.send(dag, run_id, [(task_id, claim.attempt)],
                                      countdown=max(0.05, wait) + 0.05)
            return "deferred"
        if claim is None:
            task.request.chain = None  # a duplicate must not continue the chain either
            log.info("%s.%s run %s attempt %s: already handled, skipping",
                     dag_id, task_id, run_id, attempt)
            return "duplicate"
        if isinstance(claim, GiveUp):
            return self._failed(task, dag, run_id, task_id, t, claim, claim.error_type,
                                claim.message, None)
        self.wiring.outcomes.started(dag.id, run_id, task_id, claim, worker)
        if unresolved is not None:
            return self._failed(task, dag, run_id, task_id, t, claim,
                                errors.UnresolvableTask.__name__, unresolved, None)
        try:
            return self._run(task, dag, run_id, task_id, t, claim)
        except SoftTimeLimitExceeded:
            # The soft limit fired after the body ended, while its outcome was worked out
            # (an exception's message read, a traceback formatted) and before it was
            # written: the deadline has passed either way, and an outcome must be written
            # (a success already written stays: its compare-and-set refuses this failure).
            assert self._heartbeat is not None
            self._heartbeat.clear()
            return self._failed(task, dag, run_id, task_id, t, claim,
                                errors.TaskTimeout.__name__,
                                f"exceeded its timeout of {t.timeout} s", None)

    def _expand(self, task: Task, dag: CompiledDag, run_id: str, t: spec.TaskSpec,
                attempt: int) -> Any:
        """A mapped task's own message: write an instance per item and send the first."""
        task.request.chain = None
        assert t.map_over is not None
        change = self.wiring.store.expand(
            run_id, t.id, attempt, source=t.map_over, max_active=t.max_active,
            max_attempts=t.max_attempts, max_items=self.settings.dags.max_map_items,
            worker=task.request.hostname or "?", p=dag.plan)
        if not change.applied:
            return "duplicate"
        self.wiring.outcomes.apply(dag, change)
        return None

    def _run(self, task: Task, dag: CompiledDag, run_id: str, task_id: str, t: spec.TaskSpec,
             claim: Claim) -> Any:
        header = self.wiring.store.header(run_id)
        try:
            # Opened and read here, in the worker; registered with this attempt's masker
            # before the body can print, return or raise any of them.
            params, secrets = sealed.unseal_params(dag.spec, header.params,
                                                   self.settings.security.signing_key)
            refs = secret_refs.resolve_task(t)
        except (errors.SecretUnavailable, errors.ConfigError) as exc:
            return self._failed(task, dag, run_id, task_id, t, claim, type(exc).__name__,
                                str(exc), None)
        masker = self.masker.with_secrets([*secrets, *refs.values()])
        ctx = TaskContext(dag.id, run_id, task_id, claim.attempt, params,
                          logical_time=header.logical_time,
                          interval_start=header.interval_start,
                          interval_end=header.interval_end, trigger=header.trigger,
                          payload=header.payload,
                          result_cap=self.settings.limits.max_result_bytes)
        item = claim.item if task_id != t.id else operators.NO_ITEM
        assert self._heartbeat is not None and self._capture is not None
        self._heartbeat.watch(run_id, task_id, claim.attempt, claim.token)
        poked_at = time.time()
        try:
            # The log's last chunks are written on leaving, before any outcome is.
            with self._capture.attempt(run_id, task_id, claim.attempt, masker=masker):
                result = operators.call(t, params, claim.upstream, ctx, item, refs)
            values.check_result(result, self.settings.limits.max_result_bytes)
            stored = masker.mask_value(result)
        except SoftTimeLimitExceeded:
            self._heartbeat.clear()
            return self._failed(task, dag, run_id, task_id, t, claim,
                                errors.TaskTimeout.__name__,
                                f"exceeded its timeout of {t.timeout} s", _traceback(),
                                masker=masker)
        except Exception as exc:  # user code may raise anything; all of it is recorded
            self._heartbeat.clear()
            # An error that says retrying cannot help (an HTTP 404, say) fails for good.
            return self._failed(task, dag, run_id, task_id, t, claim, type(exc).__name__,
                                str(exc), _traceback(), masker=masker,
                                retry=getattr(exc, "retryable", True) is not False)
        self._heartbeat.clear()
        chosen = None
        if t.branch:
            try:
                chosen = triggers.chosen_branches(result, dag.plan.downstream[t.id])
            except errors.BranchError as exc:
                return self._failed(task, dag, run_id, task_id, t, claim,
                                    errors.BranchError.__name__, str(exc), None)
        if t.sensor is not None and not result:
            return self._poke_again(task, dag, run_id, task_id, t, claim, poked_at)
        store = self.wiring.store
        try:
            change = store.succeed(run_id, task_id, claim.attempt, stored, dag.plan, chosen,
                                   claim.token)
        except Exception as exc:
            # A result the database refuses must end this attempt, not leave it running
            # for a takeover that would run the body again and again.
            self._unless_unreachable(exc, "the result", run_id, task_id, claim.attempt)
            return self._failed(task, dag, run_id, task_id, t, claim, type(exc).__name__,
                                f"the result could not be recorded: {store.describe(exc)}",
                                None)
        if not change.applied:
            task.request.chain = None
            return "superseded"
        by_chain = dag.plan.released_by_chain(task_id)
        if by_chain is not None and by_chain not in {n for n, _ in change.queued}:
            task.request.chain = None  # the next link was not released: stop the chain
        self.wiring.outcomes.apply(dag, change, chained=by_chain)
        return None

    def _poke_again(self, task: Task, dag: CompiledDag, run_id: str, task_id: str,
                    t: spec.TaskSpec, claim: Claim, poked_at: float) -> Any:
        """A sensor found its condition unmet: it sleeps in the database until its next
        poke (no worker slot, no countdown), or fails once that would pass its timeout."""
        assert t.sensor is not None
        task.request.chain = None  # its chain goes on from the poke that succeeds
        poke, change = self.wiring.store.reschedule(
            run_id, task_id, claim.attempt, claim.token, poke_interval=t.sensor.poke_interval,
            timeout=t.sensor.timeout, started=poked_at)
        if poke == "timed_out":
            return self._failed(task, dag, run_id, task_id, t, claim,
                                errors.SensorTimeout.__name__,
                                f"its condition was still not met after its timeout of "
                                f"{t.sensor.timeout} s", None, retry=False)
        if poke == "superseded":
            return "superseded"
        self.wiring.outcomes.apply(dag, change)
        return "rescheduled"

    def _unless_unreachable(self, exc: Exception, what: str, run_id: str, task_id: str,
                            attempt: int) -> None:
        """Re-raise a lost database: nothing can be recorded now, and the attempt's lease
        (no longer renewed) runs out, so the reconciler takes it over, as for a lost
        worker. Any other error is the outcome's own, for the caller to record."""
        if self.wiring.store.unreachable(exc):
            log.error("%s of run %s attempt %s: could not record %s, the database is "
                      "unreachable (%s); its lease will run out and it will be taken over",
                      task_id, run_id, attempt, what, self.wiring.store.describe(exc))
            raise exc
        log.error("%s of run %s attempt %s: recording %s failed: %s", task_id, run_id,
                  attempt, what, self.wiring.store.describe(exc))

    def _failed(self, task: Task, dag: CompiledDag, run_id: str, task_id: str,
                t: spec.TaskSpec, claim: Claim | GiveUp, error_type: str, message: str,
                tb: str | None, retry: bool = True, masker: masking.Masker | None = None,
                ) -> Any:
        task.request.chain = None
        # Masked before it is stored, and before Celery puts it in its events (Flower).
        masker = masker if masker is not None else self.masker
        message, tb = masker.mask(message), None if tb is None else masker.mask(tb)
        retry_in = retries.next_delay(t, claim.attempt, claim.lost_attempts,
                                      claim.max_attempts) if retry else None
        store = self.wiring.store
        token = claim.token if isinstance(claim, Claim) else None
        lost = isinstance(claim, GiveUp)  # its worker is gone: its log ends with a marker
        def record() -> Change:
            return store.fail(run_id, task_id, claim.attempt, error_type=error_type,
                              message=message, traceback=tb, retry_in=retry_in, p=dag.plan,
                              token=token, worker_lost=lost)

        try:
            try:
                change = record()
            except SoftTimeLimitExceeded:
                # The soft limit fired while this failure was written (the body failed just
                # before it): it fires once, so the failure itself is written again.
                change = record()
        except Exception as exc:
            self._unless_unreachable(exc, "the failure", run_id, task_id, claim.attempt)
            # Record why recording failed, with nothing of the original that may be the
            # cause; should that fail too, the lease runs out and the reconciler decides.
            error_type, message = type(exc).__name__, (
                f"recording the failure ({error_type[:100]}) failed: {store.describe(exc)}")
            change = store.fail(run_id, task_id, claim.attempt, error_type=error_type,
                                message=message, traceback=None, retry_in=retry_in,
                                p=dag.plan, token=token, worker_lost=lost)
        if not change.applied:
            return "superseded"
        self.wiring.outcomes.apply(dag, change)
        if change.retry is not None:
            _, next_attempt, wait = change.retry
            # from None: Celery's traceback would show the task's own exception unmasked.
            raise Retry(f"{error_type}: {message}; attempt {next_attempt} in {wait:.2f} s",
                        when=wait) from None
        raise TaskFailed(f"{dag.id}.{task_id} failed: {error_type}: {message}") from None


_OUR_FRAMES = frozenset({__file__, operators.__file__})


def _traceback() -> str:
    """The exception being handled, from the first frame that is not ours: the run view
    and the API show where the task's own code failed, not how a worker called it."""
    exc = sys.exc_info()[1]
    assert exc is not None
    tb = exc.__traceback__
    while (tb is not None and tb.tb_next is not None
           and tb.tb_frame.f_code.co_filename in _OUR_FRAMES):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _names_its_task(task: Task, dag: CompiledDag, t: spec.TaskSpec) -> bool:
    """Whether the message's Celery name is the one its kwargs' task is sent under (the
    signature proves who sent it; this, that the sender did not mix two tasks up)."""
    name = task.request.task
    if name is None or name == dispatch.task_name(dag.id, t.celery_name):
        return True
    task.request.chain = None
    log.warning("dropped task message %s: its name %r is not task %r of DAG %r (sent as "
                "%r)", task.request.id, name, t.id, dag.id,
                dispatch.task_name(dag.id, t.celery_name))
    return False
