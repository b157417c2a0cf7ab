"""The Celery app workers run: one Celery task per DAG node, named ``<dag>.<task>``."""

from __future__ import annotations

from typing import Any

from celery import Celery

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport import dispatch
from orchestrator.transport.celery_config import celery_config
from workers.runtime import Runtime


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    if not settings.broker_url:
        raise errors.TransportError("ORCH_BROKER_URL is not set: give a Redis URL, or start "
                                    "the whole stack with `orchestrator up`")
    bag = discovery.load(settings.dags_path, max_tasks=settings.max_tasks)
    Store(settings.database_url).dispose()  # migrate once, before the pool forks
    app = Celery("orchestrator", set_as_current=True)
    app.conf.update(celery_config(settings, settings.broker_url))
    register(app, settings, bag)
    return app


def register(app: Celery, settings: Settings, bag: discovery.DagBag) -> None:
    """Register every task of ``bag`` on ``app`` (any Celery app, e.g. a test's)."""
    runtime = Runtime(settings, bag, dispatch.Dispatcher(app, settings))
    names = {dispatch.task_name(d.id, t.celery_name) for d in bag.dags.values() for t in d.tasks}
    for name in sorted(names):
        _register(app, runtime, name)
    app.orchestrator_bag = bag


def _register(app: Celery, runtime: Runtime, name: str) -> None:
    def run(self: Any, dag: str, task: str, run: str, attempt: int) -> Any:
        return runtime.execute(self, dag, task, run, attempt)

    run.__name__ = name.replace(".", "__").replace("-", "_")
    app.task(name=name, bind=True, acks_late=True, ignore_result=True)(run)
