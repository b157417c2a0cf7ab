"""Python callbacks (``on_failure=``, ``on_success=``, ``on_retry=``): what they are given,
and how one is called, in a worker, with the context of a task of its run."""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.execution import operators, task_context


@dataclasses.dataclass(frozen=True)
class Alert:
    """What a callback is called with. ``id`` is the same on every try of this alert
    (delivery is at least once): key side effects that must happen once on it."""

    id: str
    event: str
    """run_failed, run_succeeded, task_failed, task_retried or task_succeeded."""
    dag_id: str
    run_id: str
    task_id: str | None
    """The task it is about; for run_failed, the first task that failed."""
    attempt: int | None
    error: str | None


def call(path: str, alert: Alert, ctx: task_context.TaskContext) -> Any:
    """Import ``module:qualname`` and call it with ``alert``, ``context()`` set as for a
    task; whatever it raises is the caller's to record."""
    fn = operators.resolve(path)
    token = task_context.bind(ctx)
    try:
        return fn(alert)
    finally:
        task_context.unbind(token)
