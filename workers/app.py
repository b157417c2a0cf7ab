"""The Celery app workers run: one Celery task per DAG node, named ``<dag>.<task>``."""

from __future__ import annotations

import re
from typing import Any

from celery import Celery

from orchestrator import errors
from orchestrator.authoring import discovery, notify_rules
from orchestrator.model import spec
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport import dispatch, kombu_guard
from orchestrator.transport.celery_config import celery_config
from orchestrator.transport.signing import Signer
from workers import callbacks, integrity, registry
from workers.broker_guard import GuardedAMQP
from workers.runtime import Runtime

_NAME = re.compile(spec.ID_PATTERN[1:-1] + r"\." + spec.ID_PATTERN[1:-1])


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    Signer.of(settings)  # no key: refuse to start, before anything else
    if not settings.broker.url:
        raise errors.TransportError("ORCH_BROKER_URL is not set: give a Redis URL, or start "
                                    "the whole stack with `orchestrator up`")
    if settings.alerts.notify_file is not None:  # a bad rule stops the start, here
        notify_rules.load_file(settings.alerts.notify_file)
    store = Store(settings.database.url)  # checked once, before the pool forks
    try:
        store.check_schema()
    finally:
        store.dispose()
    bag = discovery.load_configured(settings.dags)
    kombu_guard.install()
    app = Celery("orchestrator", set_as_current=True, tasks=registry.DagTaskRegistry(),
                 amqp=GuardedAMQP)
    app.conf.update(celery_config(settings, settings.broker.url))
    app.conf.worker_consumer = "workers.registry:DagConsumer"
    register(app, settings, bag)
    return app


def register(app: Celery, settings: Settings, bag: discovery.DagBag) -> None:
    """Register every task of ``bag`` on ``app`` (any Celery app, e.g. a test's), and, if
    its registry can, learn new ones when a message names a task it does not have.
    Raises ConfigError without a signing key: the tasks check every call's signature."""
    signer = Signer.of(settings)
    known: set[str] = set()

    def register_new() -> None:
        names = {dispatch.task_name(d.id, t.celery_name)
                 for d in bag.dags.values() for t in d.spec.tasks}
        for name in sorted(names - known):
            _register(app, runtime, signer, name)
            known.add(name)

    def rescan() -> None:
        """Look at the folder again and register what it added (whoever refreshed the bag
        last, this process's registry catches up)."""
        bag.refresh()
        register_new()
        registry.trace_new_tasks(app)

    runtime = Runtime(settings, bag, app, rescan)
    register_new()
    _register_fallback(app, runtime, signer, bag)
    callbacks.register(app, lambda: runtime.wiring, signer)
    app.orchestrator_signer = signer
    if isinstance(app._tasks, registry.DagTaskRegistry):
        app._tasks.resolver = registry.make_resolver(
            app, rescan, lambda name: _NAME.fullmatch(name) is not None)
    app.orchestrator_bag = bag


def _register(app: Celery, runtime: Runtime, signer: Signer, name: str) -> None:
    # Any arguments at all: a call of the wrong shape is refused by the check, not by
    # Python's TypeError inside Celery's tracer.
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = integrity.admitted(self, signer, args, kwargs)
        if call is None:
            return "refused"
        return runtime.execute(self, *call)

    run.__name__ = name.replace(".", "__").replace("-", "_")
    # orchestrator_task: the consumer takes messages for these names (and unknown ones,
    # for the re-scan), never for Celery's own tasks (celery.map would call ours inline).
    # shared=False: the task is this app's own, never copied into apps finalized later.
    app.task(name=name, bind=True, acks_late=True, ignore_result=True, shared=False,
             orchestrator_task=True)(run)


def _register_fallback(app: Celery, runtime: Runtime, signer: Signer,
                       bag: discovery.DagBag) -> None:
    def unresolved(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = integrity.admitted(self, signer, args, kwargs)
        if call is None:
            return "refused"
        dag, task, run, attempt = call
        where = ""
        try:
            header = runtime.wiring.store.header(run)
            source = runtime.wiring.outcomes.dag_of(header).spec.source
            where = f" (submitted from {source})" if source else ""
        except errors.NotFound:
            pass
        message = (f"this worker's DAG folder {bag.path} has no task {task!r} of DAG "
                   f"{dag!r}{where}, even after looking again")
        return runtime.execute(self, dag, task, run, attempt, unresolved=message)

    app.task(name=registry.UNRESOLVED, bind=True, acks_late=True, ignore_result=True,
             shared=False)(
        unresolved)
