"""DAGs that change while workers run: a message for a task the worker does not know
makes it look at its DAG folder again before giving up.

Celery resolves a task name twice: in the worker's main process (the consumer's
strategies, to accept the message) and in the pool process that runs it (the app's
task registry). Both lookups end here on a miss. A name that appears after the re-scan
is registered and runs; one that does not is handed to a fallback task, which records
the attempt as failed (``UnresolvableTask``) naming the DAG and the file it came from,
instead of letting Celery drop the message and the task sit queued.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.app.registry import TaskRegistry
from celery.app.trace import build_tracer
from celery.worker.consumer import Consumer

log = logging.getLogger(__name__)

UNRESOLVED = "orchestrator.unresolved"
"""The fallback task a message for an unknown ``<dag>.<task>`` name is run as."""


class DagTaskRegistry(TaskRegistry):  # type: ignore[misc]
    """A task registry that, missing a name, asks ``resolver`` before giving up."""

    resolver: Callable[[str], Task | None] | None = None

    def __missing__(self, key: str) -> Task:
        if self.resolver is not None:
            found = self.resolver(key)
            if found is not None:
                return found
        raise self.NotRegistered(key)


class DagConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer with strategies that, missing a name, ask the registry."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = _Strategies(self)


class _Strategies(dict[str, Any]):
    def __init__(self, consumer: Consumer) -> None:
        super().__init__()
        self.consumer = consumer

    def __missing__(self, name: str) -> Any:
        app = self.consumer.app
        task = app.tasks[name]  # NotRegistered (a KeyError) unless the resolver found it
        strategy = task.start_strategy(app, self.consumer)
        if task.name == name:  # never cache the fallback: the file may appear later
            self[name] = strategy
        return strategy


def make_resolver(app: Celery, rescan: Callable[[], None],
                  is_ours: Callable[[str], bool]) -> Callable[[str], Task | None]:
    """A resolver for ``DagTaskRegistry``: ``rescan`` the DAG folder (it registers any new
    task on ``app``), then answer with the task, or with the fallback for our names."""

    def resolve(name: str) -> Task | None:
        if not is_ours(name):
            return None
        try:
            rescan()
        except Exception:  # a broken folder must not take the worker down
            log.exception("re-scanning the DAG folder for %s failed", name)
        return dict.get(app._tasks, name) or dict.get(app._tasks, UNRESOLVED)

    return resolve


def trace_new_tasks(app: Celery) -> None:
    """Give the tasks registered after the worker built its tracers (and maybe after the
    fork) theirs: the pool runs a task through it."""
    for task in list(app._tasks.values()):
        if task.__trace__ is None:
            task.__trace__ = build_tracer(task.name, task, app.loader, socket.gethostname(),
                                          app=app)
