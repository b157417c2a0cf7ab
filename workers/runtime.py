"""What a worker does with one message: claim the attempt, run it, record it, advance.

The transaction that records a success also decides which successors became ready
(the fan-in join is a compare-and-set in the state database), and this worker sends
them: no polling loop sits between a task and the next. A successor that is the next
link of this message's chain is left to Celery, which sends it when we return.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from typing import Any

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.control import outcomes as sending
from orchestrator.execution import operators
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import plan, spec
from orchestrator.settings import Settings
from orchestrator.store import Busy, Claim, GiveUp, Store
from orchestrator.transport import dispatch
from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)

WORKER_LOSS_LIMIT = 3
"""Attempts lost with their worker before the task fails instead of running again."""


class TaskFailed(errors.OrchestratorError):
    """The task failed and has no retries left (recorded in the state database)."""


class Runtime:
    def __init__(self, settings: Settings, bag: discovery.DagBag,
                 dispatcher: dispatch.Dispatcher) -> None:
        self.settings = settings
        self.bag = bag
        self.dispatcher = dispatcher
        self.plans = {dag_id: plan.build(d) for dag_id, d in bag.dags.items()}
        self._pid = -1
        self._store: Store | None = None
        self._heartbeat: Heartbeat | None = None
        self._sender: sending.Sender | None = None

    @property
    def store(self) -> Store:
        # One store (and heartbeat thread) per process: prefork children must not share
        # the parent's connections or threads.
        if self._pid != os.getpid():
            self._store = Store(self.settings.database_url, migrate=False)
            self._heartbeat = Heartbeat(self._store, self.settings.lease_seconds)
            self._sender = sending.Sender(self._store, self.dispatcher)
            self._pid = os.getpid()
        assert self._store is not None
        return self._store

    @property
    def sender(self) -> sending.Sender:
        assert self._sender is not None, "the store property sets it up"
        return self._sender

    def execute(self, task: Task, dag_id: str, task_id: str, run_id: str, attempt: int) -> Any:
        dag = self.bag.get(dag_id)
        p = self.plans[dag_id]
        t = dag.task(task_id)
        if t.map_over is not None and task_id == t.id:
            return self._expand(task, dag, p, run_id, t, attempt)
        store = self.store
        claim = store.claim(run_id, task_id, attempt, worker=task.request.hostname or "?",
                            pid=os.getpid(), lease_seconds=self.settings.lease_seconds,
                            data_from=t.data_from, max_lost=WORKER_LOSS_LIMIT,
                            celery_id=task.request.id, timeout=t.timeout)
        if isinstance(claim, Busy):
            # Redelivered while its attempt runs under a live lease: look again once the
            # lease says whether that worker is still alive.
            task.request.chain = None
            self.sender.send(dag, p, run_id, [(task_id, claim.attempt)],
                             countdown=max(0.1, claim.lease_expires_at - time.time()) + 0.1)
            return "deferred"
        if claim is None:
            task.request.chain = None  # a duplicate must not continue the chain either
            log.info("%s.%s run %s attempt %s: already handled, skipping",
                     dag_id, task_id, run_id, attempt)
            return "duplicate"
        if isinstance(claim, GiveUp):
            return self._failed(task, dag, p, run_id, task_id, t, claim, claim.error_type,
                                claim.message, None)
        assert isinstance(claim, Claim)
        return self._run(task, dag, p, run_id, task_id, t, claim)

    def _expand(self, task: Task, dag: spec.DagSpec, p: plan.Plan, run_id: str,
                t: spec.TaskSpec, attempt: int) -> Any:
        """A mapped task's own message: write an instance per item and send the first."""
        task.request.chain = None
        assert t.map_over is not None
        adv = self.store.expand(run_id, t.id, attempt, source=t.map_over,
                                max_active=t.max_active, max_attempts=t.max_attempts,
                                max_items=self.settings.max_map_items,
                                worker=task.request.hostname or "?", p=p)
        if not adv.applied:
            return "duplicate"
        self.sender.advance(dag, p, run_id, adv.ready, adv)
        return None

    def _run(self, task: Task, dag: spec.DagSpec, p: plan.Plan, run_id: str, task_id: str,
             t: spec.TaskSpec, claim: Claim) -> Any:
        ctx = TaskContext(dag.id, run_id, task_id, claim.attempt, claim.params)
        item = claim.item if task_id != t.id else operators.NO_ITEM
        assert self._heartbeat is not None
        self._heartbeat.watch(run_id, task_id, claim.attempt, claim.token)
        try:
            result = operators.call(t, claim.params, claim.upstream, ctx, item)
            json.dumps(result, allow_nan=False)
        except SoftTimeLimitExceeded:
            self._heartbeat.clear()
            return self._failed(task, dag, p, run_id, task_id, t, claim, "TaskTimeout",
                                f"exceeded its timeout of {t.timeout} s", traceback.format_exc())
        except Exception as exc:  # user code may raise anything; all of it is recorded
            self._heartbeat.clear()
            return self._failed(task, dag, p, run_id, task_id, t, claim, type(exc).__name__,
                                str(exc), traceback.format_exc())
        self._heartbeat.clear()
        chosen = None
        if t.branch:
            try:
                chosen = _branches(result, p.downstream[t.id])
            except ValueError as exc:
                return self._failed(task, dag, p, run_id, task_id, t, claim, "BranchError",
                                    str(exc), None)
        adv = self.store.succeed(run_id, task_id, claim.attempt, result, p, chosen, claim.token)
        if not adv.applied:
            task.request.chain = None
            return "superseded"
        by_chain = p.released_by_chain(task_id)
        if by_chain is not None and by_chain not in {n for n, _ in adv.ready}:
            task.request.chain = None  # the next link was not released: stop the chain
        self.sender.advance(dag, p, run_id, [r for r in adv.ready if r[0] != by_chain], adv)
        return None

    def _failed(self, task: Task, dag: spec.DagSpec, p: plan.Plan, run_id: str, task_id: str,
                t: spec.TaskSpec, claim: Claim | GiveUp, error_type: str, message: str,
                tb: str | None) -> Any:
        task.request.chain = None
        attempt, max_attempts = claim.attempt, claim.max_attempts
        used = attempt - claim.lost_attempts  # lost attempts do not spend the user's retries
        retry = used < max_attempts
        adv = self.store.fail(run_id, task_id, attempt, error_type=error_type, message=message,
                              traceback=tb, retry=retry, p=p,
                              token=claim.token if isinstance(claim, Claim) else None)
        if not adv.applied:
            return "superseded"
        wait = self.sender.after_failure(dag, p, run_id, task_id, adv, used=used,
                                         max_attempts=max_attempts)
        if wait is not None:
            raise Retry(f"{error_type}: {message}; attempt {adv.retry_attempt} in {wait:.2f} s",
                        when=wait)
        raise TaskFailed(f"{dag.id}.{task_id} failed: {error_type}: {message}")


def _branches(result: Any, children: tuple[str, ...]) -> set[str]:
    """The children a branching task chose: a task id or a list of them."""
    chosen = {result} if isinstance(result, str) else result
    if not isinstance(chosen, list | set | tuple) or not all(
            isinstance(c, str) for c in chosen):
        raise ValueError(f"a branch task returns a task id or a list of them, got {result!r}")
    unknown = set(chosen) - set(children)
    if unknown:
        raise ValueError(f"branch chose {sorted(unknown)}, which are not its direct "
                         f"downstream tasks {list(children)}")
    return set(chosen)

