"""The Python client: submit runs, wait for them, read their state and results.

``Client()`` reads the same ``ORCH_*`` settings as workers. Submitting validates the DAG
and params before anything is written or sent; a rejected submit changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.model import plan, records, spec, triggers
from orchestrator.model.states import FINISHED_RUN, RunState, TaskState
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport import dispatch

ProgressCallback = Callable[[dict[TaskState, int], int], None]


class Client:
    """Parameters override the matching ``ORCH_*`` settings."""

    def __init__(self, settings: Settings | None = None, *, broker_url: str | None = None,
                 database_url: str | None = None, dags_path: str | None = None) -> None:
        s = settings or Settings()
        overrides = {k: v for k, v in {"broker_url": broker_url, "database_url": database_url,
                                        "dags_path": dags_path}.items() if v is not None}
        self.settings = s.model_copy(update=overrides) if overrides else s
        self.store = Store(self.settings.database_url)
        self._plans: dict[str, plan.Plan] = {}

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def dagbag(self) -> discovery.DagBag:
        return discovery.load(self.settings.dags_path, max_tasks=self.settings.max_tasks)

    @cached_property
    def _dispatcher(self) -> dispatch.Dispatcher:
        if not self.settings.broker_url:
            raise errors.TransportError("ORCH_BROKER_URL is not set: cannot send work "
                                        "(start the stack with `orchestrator up`)")
        app = dispatch.make_producer_app(self.settings, self.settings.broker_url)
        return dispatch.Dispatcher(app, self.settings)

    def dags(self) -> list[spec.DagSpec]:
        return sorted(self.dagbag.dags.values(), key=lambda d: d.id)

    def dag(self, dag_id: str) -> spec.DagSpec:
        return self.dagbag.get(dag_id)

    def _plan(self, dag: spec.DagSpec) -> plan.Plan:
        if dag.id not in self._plans:
            self._plans[dag.id] = plan.build(dag)
        return self._plans[dag.id]

    def submit(self, dag_id: str, params: Mapping[str, Any] | None = None, *,
               idempotency_key: str | None = None) -> str:
        """Start a run; returns its id. With an idempotency key that was used before for
        this DAG, returns that run's id and creates nothing."""
        dag = self.dagbag.get(dag_id)
        values = spec.validate_params(dag, params)
        self._check_limits(dag)
        dispatcher = self._dispatcher  # fail on a missing broker URL before writing
        p = self._plan(dag)
        new = self.store.create_run(
            run_id=uuid.uuid4().hex, dag_id=dag.id, params=values, upstream=p.upstream,
            max_attempts={t.id: t.max_attempts for t in dag.tasks},
            idempotency_key=idempotency_key, initial=p.initial, timeout=dag.timeout)
        if new.created:
            dispatcher.send(dag, p, new.run_id, [(r, 1) for r in p.initial])
        return new.run_id

    def cancel(self, run_id: str) -> None:
        """Cancel a running run: queued tasks never start, running ones are terminated,
        and the run ends ``cancelled``. Raises :class:`Conflict` if it already ended."""
        dispatcher = self._dispatcher
        dispatcher.terminate(self.store.cancel(run_id))
        dispatcher.run_finished(run_id, RunState.CANCELLED)

    def rerun(self, run_id: str, *, from_task: str | None = None) -> list[str]:
        """Continue a finished run: rerun its failed and upstream_failed tasks (or
        ``from_task`` and everything downstream of it), keeping every other result.
        A mapped task rerun from failure runs again only its instances that did not
        succeed. Returns the task ids reset, in dependency order."""
        run = self.store.get_run(run_id, with_results=False)
        if not run.finished:
            raise errors.Conflict(f"run {run_id!r} is still running: wait for it first")
        dag = self.dagbag.get(run.dag_id)
        state = {t: ti.state for t, ti in run.tasks.items() if ti.map_parent is None}
        if set(state) != {t.id for t in dag.tasks}:
            raise errors.Conflict(f"DAG {dag.id!r} has changed since run {run_id!r}: "
                                  "its tasks differ, so it cannot be continued")
        p = self._plan(dag)
        if from_task is not None:
            if from_task not in state:
                raise errors.UnknownTask(f"DAG {dag.id!r} has no task {from_task!r} (rerun "
                                         "a mapped task as a whole, by its own id)")
            targets = {from_task, *p.descendants(from_task)}
        else:
            targets = {t for t, s in state.items()
                       if s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)}
        if not targets:
            raise errors.Conflict(f"run {run_id!r} has no failed task to rerun "
                                  "(name one with from_task)")
        reset = _reset_plan(p, state, targets)
        dispatcher = self._dispatcher
        # From failure, a mapped task keeps its instances that succeeded; from a named
        # task, every instance of the mapped tasks reset runs again.
        redo = [t for t in reset if t in p.map_over] if from_task is not None else []
        done = self.store.rerun(run_id, reset, {t: dag.task(t).max_attempts for t in reset},
                                leaves=[t for t in p.order if not p.downstream[t]],
                                redo_instances=redo)
        dispatcher.send(dag, p, run_id, done.ready, done.attempts)
        if done.run_state is not None:
            dispatcher.run_finished(run_id, done.run_state)
        return list(reset)

    def _check_limits(self, dag: spec.DagSpec) -> None:
        cap = self.settings.task_timeout_max
        for t in dag.tasks:
            if t.timeout is not None and t.timeout > cap:
                raise errors.DagError(f"task {t.id!r}: timeout {t.timeout} s is above "
                                      f"ORCH_TASK_TIMEOUT_MAX ({cap} s)", dag_id=dag.id)

    def get_run(self, run_id: str) -> records.Run:
        return self.store.get_run(run_id)

    def runs(self, *, dag_id: str | None = None, state: str | None = None,
             limit: int = 50) -> list[records.Run]:
        return self.store.list_runs(dag_id=dag_id, state=state, limit=limit)

    def result(self, run_id: str, task_id: str) -> Any:
        """A task's return value; raises :class:`TaskNotFinished` unless it succeeded."""
        state, value = self.store.result(run_id, task_id)
        if state != TaskState.SUCCESS:
            raise errors.TaskNotFinished(f"task {task_id!r} of run {run_id!r} is {state}, "
                                         "it has no result")
        return value

    def wait(self, run_id: str, timeout: float | None = None, *,
             on_progress: ProgressCallback | None = None) -> records.Run:
        """Block until the run finishes; returns it with every task and attempt.

        Woken by the worker that ends the run (Redis pub/sub); the database is checked on
        every wake-up and at least once a second, so a lost notification costs one second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sub = None
        if self.settings.broker_url:
            try:
                sub = dispatch.subscribe(self.settings.broker_url)
            except Exception:
                sub = None
        try:
            while True:
                if self.store.run_state(run_id) in FINISHED_RUN:
                    return self.store.get_run(run_id)
                if on_progress is not None:
                    counts = self.store.progress(run_id)
                    # counted each time: a mapped task adds its instances as it starts
                    on_progress(counts, sum(counts.values()))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    state = self.store.run_state(run_id)
                    raise errors.WaitTimeout(f"run {run_id!r} is still {state} after "
                                             f"{timeout} s")
                step = 0.25 if on_progress else 1.0
                step = step if left is None else max(0.0, min(step, left))
                if sub is not None:
                    sub.get_message(timeout=step)
                else:
                    time.sleep(min(step, 0.05))
        finally:
            if sub is not None:
                sub.close()


def _reset_plan(p: plan.Plan, state: Mapping[str, TaskState],
                targets: set[str]) -> dict[str, tuple[TaskState, int, int, int]]:
    """For each task to rerun, in dependency order: its new state, and its parents still to
    finish, failed and skipped (what its trigger rule reads).

    A task whose rule is already settled by parents that are not rerun (a failure that
    stays, say) is skipped or upstream_failed straight away, and its children see that."""
    reset: dict[str, tuple[TaskState, int, int, int]] = {}
    for t in p.order:
        if t not in targets:
            continue
        waiting = failed = skipped = 0
        for u in p.upstream[t]:
            s = reset[u][0] if u in reset else state[u]
            if s in (TaskState.PENDING, TaskState.QUEUED):
                waiting += 1
            elif s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED):
                failed += 1
            elif s == TaskState.SKIPPED:
                skipped += 1
        n = len(p.upstream[t])
        d = triggers.decide(p.trigger_rules[t], n, n - waiting, failed, skipped)
        new = {triggers.Decision.RUN: TaskState.QUEUED,
               triggers.Decision.WAIT: TaskState.PENDING}.get(d) or TaskState(d.value)
        reset[t] = (new, waiting, failed, skipped)
    return reset
