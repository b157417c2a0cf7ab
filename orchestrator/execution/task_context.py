"""What a running task can know about itself: run id, task id, attempt.

Side effects that must happen once should key on ``(run_id, task_id)``; the attempt
number tells a retry or a redelivery from the first try.
"""

from __future__ import annotations

import contextvars
import dataclasses
from typing import Any

from orchestrator import errors


@dataclasses.dataclass(frozen=True)
class TaskContext:
    dag_id: str
    run_id: str
    task_id: str
    attempt: int
    params: dict[str, Any]


_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "orchestrator_task_context", default=None)


def current() -> TaskContext:
    """The context of the task running in this thread; raises outside a task."""
    ctx = _current.get()
    if ctx is None:
        raise errors.OrchestratorError("orchestrator.context() is only available inside a task")
    return ctx


def bind(ctx: TaskContext) -> contextvars.Token[TaskContext | None]:
    return _current.set(ctx)


def unbind(token: contextvars.Token[TaskContext | None]) -> None:
    _current.reset(token)
