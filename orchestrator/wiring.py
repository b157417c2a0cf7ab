"""The one composition root: settings in, the parts a process needs out, built on first
use and closed together.

The client, the workers (one per pool process, after the fork), the coordinator and
the local stack all build their store, Celery producer, dispatcher, hooks, control and
DAG folder here, and nowhere else.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from celery import Celery

from orchestrator import errors
from orchestrator.authoring import discovery, notify_rules
from orchestrator.control import hooks as hooks_
from orchestrator.control.commands import Commands
from orchestrator.control.outcomes import Outcomes
from orchestrator.model import notify
from orchestrator.observability import masking
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.transport.dispatch import Dispatcher, make_producer_app


class Wiring:
    """``app``: a Celery app to send through (a worker's own); else a producer is made."""

    def __init__(self, settings: Settings, *, app: Celery | None = None,
                 bag: discovery.DagBag | None = None, hooks: hooks_.HookSet | None = None,
                 check_schema: bool = True) -> None:
        self.settings = settings
        self._app = app
        self._own_app: Celery | None = None
        self._bag = bag
        self._hooks = hooks
        self._check_schema = check_schema

    @cached_property
    def store(self) -> Store:
        store = Store(self.settings.database.url,
                      params_cache_bytes=self.settings.limits.params_cache_bytes)
        store.alert_rules = self.alert_rules
        if self._check_schema:
            try:
                store.check_schema()
            except BaseException:
                store.dispose()
                raise
        return store

    @cached_property
    def alert_rules(self) -> tuple[notify.Rule, ...]:
        """The global rules file's, read once: a bad one fails the process's start."""
        path = self.settings.alerts.notify_file
        return () if path is None else notify_rules.load_file(path)

    @property
    def broker_url(self) -> str:
        url = self.settings.broker.url
        if not url:
            raise errors.TransportError("ORCH_BROKER_URL is not set: cannot send work (start "
                                        "the stack with `orchestrator up`, or set it)")
        return url

    @property
    def app(self) -> Celery:
        if self._app is not None:
            return self._app
        if self._own_app is None:
            self._own_app = make_producer_app(self.settings, self.broker_url)
        return self._own_app

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.app, self.settings,
                          mask=masking.process_masker(self.settings).mask)

    @property
    def bag(self) -> discovery.DagBag:
        if self._bag is None:
            self._bag = discovery.load_configured(self.settings.dags)
        return self._bag

    @cached_property
    def hooks(self) -> hooks_.HookSet:
        if self._hooks is None:
            self._hooks = hooks_.load(self.settings.hooks.entries)
        return self._hooks

    @cached_property
    def outcomes(self) -> Outcomes:
        return Outcomes(self.store, lambda: self.dispatcher, self.hooks, lambda: self.bag)

    @cached_property
    def commands(self) -> Commands:
        return Commands(self.settings, self.outcomes)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.dispose()
        if self._own_app is not None:
            self._own_app.close()
            self._own_app = None

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
