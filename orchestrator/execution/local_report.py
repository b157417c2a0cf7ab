"""What ``Dag.test`` returns: the results of a run in this process, and how each task went.

A :class:`LocalRun` is the ``{task_id: result}`` dict of the tasks that succeeded (so
``dag.test() == {...}`` compares results only), with the run's report beside it:
``states``, ``attempts``, ``failed``, ``error`` and ``state``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.model import spec
from orchestrator.model.states import RunState, TaskState


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One run of a task's body: ``number`` is ``context().attempt`` (1, 2, ...)."""

    number: int
    outcome: str
    """``success`` or ``failed``."""
    error_type: str | None = None
    """The exception's class name (``TaskTimeout`` for a timeout), as a worker stores it."""
    message: str | None = None
    retry_delay: float | None = None
    """Seconds a worker would have waited before the next attempt (backoff and jitter as
    on workers); None when no attempt followed."""
    exception: BaseException | None = dataclasses.field(default=None, repr=False,
                                                         compare=False)
    """The exception itself (its traceback included), for a test that wants it."""


class LocalRun(dict[str, Any]):
    """``{task_id: result}`` for the tasks that succeeded (a mapped task: the list of its
    instances' results, in item order), plus the run's report:

    - ``states``: every task, and every mapped instance (``name[i]``), by id, in the order
      they were decided: ``success``, ``failed``, ``upstream_failed`` or ``skipped``
      (:class:`~orchestrator.model.states.TaskState`, which compares equal to the string);
    - ``attempts``: every task or instance whose body ran, by id, to its :class:`Attempt`
      records in order, so ``len(run.attempts["flaky"]) == 3`` after two retries;
    - ``failed``: the ids that failed for good, in the order they did;
    - ``error``: the exception of the first of those (None if none failed);
    - ``state``: the run's state as a worker would end it: ``failed`` if a task without
      downstream tasks failed or was upstream_failed, else ``success`` (a failure a
      cleanup task handles with ``all_done`` does not fail the run).
    """

    def __init__(self, run_id: str, leaves: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.run_id = run_id
        self.states: dict[str, TaskState] = {}
        self.attempts: dict[str, list[Attempt]] = {}
        self.failed: list[str] = []
        self.error: BaseException | None = None
        self._leaves = leaves

    @property
    def state(self) -> RunState:
        bad = (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
        return (RunState.FAILED if any(self.states.get(t) in bad for t in self._leaves)
                else RunState.SUCCESS)

    def record(self, task_id: str, state: TaskState, result: Any = None) -> None:
        """Note how ``task_id`` ended; a success keeps its result (instances keep none:
        their mapped task holds the list)."""
        self.states[task_id] = state
        if state == TaskState.SUCCESS and spec.split_task_id(task_id)[1] is None:
            self[task_id] = result
        elif state == TaskState.FAILED:
            self.failed.append(task_id)

    def fail(self, task_id: str, exc: BaseException) -> None:
        """``task_id`` failed for good with ``exc``."""
        self.record(task_id, TaskState.FAILED)
        if self.error is None:
            self.error = exc

    def summary(self) -> str:
        """One line per task that did not simply succeed at its first attempt."""
        lines = [f"Dag.test run {self.run_id}: {self.state}"]
        for task_id, state in self.states.items():
            tries = self.attempts.get(task_id, [])
            if state == TaskState.SUCCESS and len(tries) <= 1:
                continue
            detail = "; ".join(
                f"#{a.number} {a.outcome}" + (f" {a.error_type}: {a.message}"
                                               if a.error_type else "")
                for a in tries)
            lines.append(f"  {task_id}: {state}" + (f" ({detail})" if detail else ""))
        return "\n".join(lines)
