"""``@sensor``: a task poked until its function returns something truthy.

Between pokes it holds no worker slot and no Celery countdown: the wait is a wake-up time
in the database that a coordinator acts on. A falsy return spends no retry; once the next
poke would start past ``timeout`` seconds after the first, it fails with SensorTimeout.
An exception in the function is an ordinary failure (its retries apply)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from orchestrator.authoring.python import TaskFunction, _check_options

P = ParamSpec("P")
R = TypeVar("R")


def sensor(*, poke_interval: float = 30.0, timeout: float = 3600.0, task_id: str | None = None,
           **options: Any) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Declare a sensor: ``poke_interval`` seconds between pokes, ``timeout`` seconds from
    the first poke; other options as for ``@task``. Its truthy return is its result."""
    options = {**options, "sensor": {"poke_interval": poke_interval, "timeout": timeout}}
    _check_options(options)

    def wrap(fn: Callable[P, R]) -> TaskFunction[P, R]:
        return TaskFunction(fn, task_id, **options)

    return wrap
