"""Run a DAG inside this process, in dependency order: the test harness for DAG authors.

Branches, trigger rules and mapping apply as on workers (mapped items run one by one);
the first exception a task raises propagates (so a test sees it), which means
failure-handling rules are not exercised here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator import errors
from orchestrator.execution import operators, task_context
from orchestrator.model import params as params_
from orchestrator.model import plan, spec, triggers


def run_in_process(dag: spec.DagSpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``{task_id: result}`` for the tasks that ran (skipped ones are absent)."""
    values = params_.validate(dag, params)
    p = plan.build(dag)
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    results: dict[str, Any] = {}
    skipped_edges: set[tuple[str, str]] = set()  # (parent, child) a branch did not take
    for node in p.order:
        ups = p.upstream[node]
        skipped = sum(1 for u in ups if u not in results or (u, node) in skipped_edges)
        decision = triggers.decide(p.trigger_rules[node], len(ups), len(ups), 0, skipped)
        if decision != triggers.Decision.RUN:
            continue
        t = dag.task(node)
        if t.map_over is not None:
            items = results[t.map_over]
            if not isinstance(items, list):
                raise errors.OrchestratorError(
                    f"task {node!r} maps over {t.map_over!r}, which returned "
                    f"{type(items).__name__}, not a list")
            results[node] = [
                operators.call(t, values, results, task_context.TaskContext(
                    dag.id, run_id, spec.map_instance_id(node, i), 1, values), item)
                for i, item in enumerate(items)]
            continue
        ctx = task_context.TaskContext(dag.id, run_id, node, 1, values)
        results[node] = operators.call(t, values, results, ctx)
        if t.branch:
            chosen = {results[node]} if isinstance(results[node], str) else set(results[node])
            skipped_edges |= {(node, c) for c in p.downstream[node] if c not in chosen}
    return results
