"""Run a DAG inside this process, in dependency order: the test harness for DAG authors.

Tasks run one at a time (mapped items one by one) with what a worker applies: retries
with their attempt numbers and backoffs (recorded; waited only with ``wait_backoff``),
timeouts (:mod:`~orchestrator.execution.local_deadline`), branches, and every trigger
rule, failure rules included: a task that failed for good does not stop the run, its
downstream tasks are decided by their rules (``all_success`` ones end upstream_failed,
``all_done`` and ``one_failed`` ones run). A task reading a failed or skipped task's
output gets None, as on a worker. At the end, if a task failed for good, the first such
failure's own exception is raised (``raise_on_failure``), so a test sees it.

Unlike a worker: every body runs in this process, one at a time; results are not
checked for JSON; a sensor is poked once; callbacks and alerts do not run.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator import errors
from orchestrator.execution import local_attempts, task_context
from orchestrator.execution.local_report import Attempt, LocalRun
from orchestrator.model import params as params_
from orchestrator.model import plan, spec, triggers
from orchestrator.model.states import TaskState

_BAD = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
_DECIDED = {triggers.Decision.SKIP: TaskState.SKIPPED,
            triggers.Decision.UPSTREAM_FAILED: TaskState.UPSTREAM_FAILED}


def run_in_process(dag: spec.DagSpec, params: Mapping[str, Any] | None = None, *,
                   raise_on_failure: bool = True, wait_backoff: bool = False) -> LocalRun:
    """Run ``dag`` here (``Dag.test(**params)`` calls this); return its
    :class:`~orchestrator.execution.local_report.LocalRun`: ``{task_id: result}`` of the
    tasks that succeeded, with ``states``, ``attempts``, ``failed``, ``error``, ``state``.

    ``raise_on_failure`` (the default): if a task failed for good, its own exception is
    raised once every task is decided, so ``pytest.raises(ItsType)`` holds; the report is
    the exception's ``orchestrator_run`` attribute and its summary a note. False: the
    report is returned, failures and all. ``wait_backoff``: sleep the backoff before each
    retry, as a worker would wait (by default it is only recorded, in
    ``Attempt.retry_delay``). Through ``Dag.test`` these two names are options, never run
    params: a DAG with a param of either name is run through this function. Invalid params
    raise ParamsError before anything runs."""
    values = params_.validate(dag, params)
    p = plan.build(dag)
    run = LocalRun(f"local-{uuid.uuid4().hex[:12]}",
                   frozenset(n for n in p.order if not p.downstream[n]))
    skipped_edges: set[tuple[str, str]] = set()  # (parent, child) a branch did not take
    for node in p.order:
        ups = p.upstream[node]
        failed = sum(1 for u in ups if run.states[u] in _BAD)
        skipped = sum(1 for u in ups if run.states[u] == TaskState.SKIPPED
                      or (u, node) in skipped_edges)
        decision = triggers.decide(p.trigger_rules[node], len(ups), len(ups), failed, skipped)
        if decision != triggers.Decision.RUN:
            run.record(node, _DECIDED[decision])
            continue
        t = dag.task(node)
        # A parent that did not succeed has no result: a worker reads None for it.
        upstream = {u: run.get(u) for u in t.data_from}
        if t.map_over is not None:
            _run_mapped(dag, t, values, upstream, run, wait_backoff)
            continue
        outcome = local_attempts.run_task(
            t, values, upstream, functools.partial(_context, dag, run, node, values),
            children=p.downstream[node], wait_backoff=wait_backoff)
        run.attempts[node] = outcome.attempts
        if not outcome.ok:
            assert outcome.error is not None
            run.fail(node, outcome.error)
            continue
        run.record(node, TaskState.SUCCESS, outcome.value)
        if outcome.chosen is not None:
            skipped_edges |= {(node, c) for c in p.downstream[node] if c not in outcome.chosen}
    if raise_on_failure and run.error is not None:
        raise _with_report(run.error, run)
    return run


def _context(dag: spec.DagSpec, run: LocalRun, task_id: str, values: dict[str, Any],
             attempt: int) -> task_context.TaskContext:
    return task_context.TaskContext(dag.id, run.run_id, task_id, attempt, values)


def _run_mapped(dag: spec.DagSpec, t: spec.TaskSpec, values: dict[str, Any],
                upstream: dict[str, Any], run: LocalRun, wait_backoff: bool) -> None:
    """Every instance of a mapped task, each with its own attempts, as a worker runs them
    all whatever some of them do; the task fails if any instance failed."""
    assert t.map_over is not None
    items = run.get(t.map_over)
    if not isinstance(items, list):
        error = errors.MapError(f"task {t.id!r} maps over {t.map_over!r}, which returned "
                                f"{type(items).__name__}, not a list")
        run.attempts[t.id] = [Attempt(1, "failed", type(error).__name__, str(error),
                                      None, error)]
        run.fail(t.id, error)
        return
    results: list[Any] = []
    first_error: BaseException | None = None
    for i, item in enumerate(items):
        instance = spec.map_instance_id(t.id, i)
        outcome = local_attempts.run_task(
            t, values, upstream, functools.partial(_context, dag, run, instance, values),
            item=item, wait_backoff=wait_backoff)
        run.attempts[instance] = outcome.attempts
        if outcome.ok:
            run.record(instance, TaskState.SUCCESS)
            results.append(outcome.value)
        else:
            assert outcome.error is not None
            run.fail(instance, outcome.error)
            first_error = first_error or outcome.error
    if first_error is None:
        run.record(t.id, TaskState.SUCCESS, results)
    else:
        run.fail(t.id, first_error)


def _with_report(exc: BaseException, run: LocalRun) -> BaseException:
    """The task's own exception (so ``pytest.raises(ItsType)`` holds), carrying the run."""
    with contextlib.suppress(AttributeError, TypeError):  # a class that takes no attribute
        exc.orchestrator_run = run  # type: ignore[attr-defined]
    exc.add_note(run.summary())
    return exc
