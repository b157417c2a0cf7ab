"""Run a DAG inside this process, in dependency order: the test harness for DAG authors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator import operators, plan, spec, task_context


def run_in_process(dag: spec.DagSpec, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``{task_id: result}``; the first exception a task raises propagates."""
    values = spec.validate_params(dag, params)
    p = plan.build(dag)
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    results: dict[str, Any] = {}
    for node in p.order:
        ctx = task_context.TaskContext(dag.id, run_id, node, 1, values)
        results[node] = operators.call(dag.task(node), values, results, ctx)
    return results
