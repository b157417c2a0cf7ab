"""What a running task can know about itself: run id, task id, attempt.

Side effects that must happen once should key on ``(run_id, task_id)``; the attempt
number tells a retry or a redelivery from the first try.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from orchestrator import errors

if TYPE_CHECKING:
    from orchestrator.execution.connections import Connection


@dataclasses.dataclass(frozen=True)
class TaskContext:
    dag_id: str
    run_id: str
    task_id: str
    attempt: int
    params: dict[str, Any]
    # A scheduled run's tick and data interval [start, end); None for a manual run.
    logical_time: dt.datetime | None = None
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    trigger: str = "manual"
    payload: Any = None
    result_cap: int | None = None
    """The most bytes of result the worker stores (sql and http tasks stop reading past
    it)."""

    def connection(self, name: str) -> Connection:
        """The named connection (``ORCH_CONN_<NAME>`` or the connections file), read here
        in the worker; its password is masked in what the task writes."""
        from orchestrator.execution import connections

        return connections.get(name)


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
