"""One task (or mapped instance) of a ``Dag.test`` run, attempt after attempt, as a worker
runs it: its timeout enforced, a failed attempt retried while ``retries`` allow, with
the backoff a worker would wait recorded (and waited only if asked: a ``Dag.test`` is a
unit test)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from orchestrator.execution import local_deadline, operators
from orchestrator.execution.local_report import Attempt
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import retries, spec, triggers


@dataclasses.dataclass
class Outcome:
    """How a task ended: ``ok`` with ``value``, or failed for good with ``error``."""

    attempts: list[Attempt]
    ok: bool
    value: Any = None
    error: BaseException | None = None
    chosen: frozenset[str] | None = None
    """A branching task's chosen children."""


def run_task(task: spec.TaskSpec, params: Mapping[str, Any], upstream: Mapping[str, Any],
             context: Callable[[int], TaskContext], *, item: Any = operators.NO_ITEM,
             children: Collection[str] = (), wait_backoff: bool = False) -> Outcome:
    """Run ``task`` until an attempt succeeds or none is left. ``context(n)``: attempt
    ``n``'s context; ``children``: a branching task's direct downstream tasks."""
    attempts: list[Attempt] = []
    number = 0
    while True:
        number += 1
        ctx = context(number)
        try:
            value = _attempt(task, params, upstream, ctx, item)
            chosen = triggers.chosen_branches(value, children) if task.branch else None
        except Exception as exc:  # user code may raise anything; a worker records it all
            # An error that says retrying cannot help (an HTTP 404, say) fails for good.
            delay = (retries.next_delay(task, number, 0, task.max_attempts)
                     if getattr(exc, "retryable", True) is not False else None)
            attempts.append(Attempt(number, "failed", type(exc).__name__, str(exc), delay,
                                    exc))
            if delay is None:
                return Outcome(attempts, False, error=exc)
            if wait_backoff:
                time.sleep(delay)
            continue
        attempts.append(Attempt(number, "success"))
        return Outcome(attempts, True, value, chosen=chosen)


def _attempt(task: spec.TaskSpec, params: Mapping[str, Any], upstream: Mapping[str, Any],
             ctx: TaskContext, item: Any) -> Any:
    def body() -> Any:
        return operators.call(task, params, upstream, ctx, item)

    if task.timeout is None:
        return body()
    return local_deadline.call_with_timeout(body, task.timeout, ctx, task.kind)
