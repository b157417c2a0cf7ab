"""DAGs that change while workers run: a message for a task the worker does not know
makes it look at its DAG folder again before giving up.

Celery resolves a task name twice: in the worker's main process (the consumer's
strategies, to accept the message) and in the pool process that runs it (the app's
task registry). Both lookups end here on a miss. A name that appears after the re-scan
is registered and runs; one that does not is handed to a fallback task, which records
the attempt as failed (``UnresolvableTask``) naming the DAG and the file it came from,
instead of letting Celery drop the message and the task sit queued.

The consumer is also where a worker survives hostile input: every task message is
checked (:mod:`workers.integrity`) before Celery's code reads it, whatever fails in
Celery's handling of one message drops that message only, and the worker's mailbox
obeys only the remote control commands of :mod:`workers.remote_control`.
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
from kombu.message import Message

from orchestrator import errors
from orchestrator.transport.signing import NO_KEY, Signer
from workers import integrity, remote_control

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
    """Celery's consumer with strategies that, missing a name, ask the registry; that
    drops (acknowledges, with one warning) every task message it must not take; and
    whose mailbox answers only the remote control commands we allow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = _Strategies(self)
        signer = getattr(self.app, "orchestrator_signer", None)
        if not isinstance(signer, Signer):
            raise errors.ConfigError(NO_KEY)
        self.signer = signer
        for step in self.blueprint.steps.values():
            box = getattr(step, "box", None)  # the remote control step's mailbox
            if box is not None:
                box.node.handlers = remote_control.handlers(signer)

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Message], None]:
        handle = super().create_task_handler(*args, **kwargs)
        app, signer = self.app, self.signer

        def on_task_received(message: Message) -> None:
            problem = integrity.message_problem(message, app, signer)
            if problem is None:
                try:
                    handle(message)
                    return
                except Exception as exc:  # one message must never stop the worker
                    problem = (f"Celery could not take it ({type(exc).__name__}: "
                               f"{integrity.shown(str(exc))})")
            self._drop(message, problem)

        return on_task_received

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        # Celery's logs the whole body with a traceback at CRITICAL; one line will do.
        self._drop(message, f"it does not decode ({type(exc).__name__})")

    def _drop(self, message: Message, problem: str) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        integrity.refused(headers.get("id"), headers.get("task"), problem)
        if not message.acknowledged:
            message.ack_log_error(log, self.connection_errors)  # type: ignore[no-untyped-call]


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
