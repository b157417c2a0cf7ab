"""Hooks: what metrics and notifications subscribe to, with no-op defaults.

Control calls them after the store committed a transition, from the one process whose
compare-and-set won it, so each transition of a run is reported once (a process that
dies between its commit and the call loses that call: hooks are for counting and
watching; alerts that must not be lost go through the database). A hook that raises is
logged and never disturbs the run.

Load your own with ``ORCH_HOOKS=mypkg.metrics:Hooks`` (a class, built with no arguments,
or an instance), in every process that should call it: workers, coordinators, clients.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Iterable

from orchestrator import errors

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunEvent:
    dag_id: str
    run_id: str
    state: str
    """``running`` when it started (or a rerun reopened it), else how it ended."""
    at: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True)
class TaskEvent:
    dag_id: str
    run_id: str
    task_id: str
    attempt: int | None
    state: str
    """``queued`` or the state it finished in (success, failed, skipped, ...)."""
    reason: str | None = None
    """Why it was queued: ``ready`` (its trigger rule), ``retry`` (after ``delay``
    seconds) or ``resend`` (the reconciler sent it again)."""
    delay: float | None = None
    at: float = dataclasses.field(default_factory=time.time)


@dataclasses.dataclass(frozen=True)
class AttemptEvent:
    dag_id: str
    run_id: str
    task_id: str
    attempt: int
    outcome: str
    """``running`` when it started; success, failed or lost when it ended."""
    error_type: str | None = None
    worker: str | None = None
    at: float = dataclasses.field(default_factory=time.time)


class Hooks:
    """Subclass and override what you need; every method does nothing by default."""

    def run_started(self, event: RunEvent) -> None:
        """A run was submitted, or a rerun reopened it."""

    def task_queued(self, event: TaskEvent) -> None:
        """A task is ready and its message is going out (or will, for a retry)."""

    def attempt_started(self, event: AttemptEvent) -> None:
        """A worker claimed an attempt."""

    def attempt_finished(self, event: AttemptEvent) -> None:
        """An attempt ended: success, failed (retried or not), or lost with its worker."""

    def task_finished(self, event: TaskEvent) -> None:
        """A task reached its final state (mapped instances included)."""

    def run_finished(self, event: RunEvent) -> None:
        """A run ended: success, failed or cancelled."""


class HookSet(Hooks):
    """Calls every registered hook in turn; one that raises is logged and skipped."""

    def __init__(self, hooks: Iterable[Hooks] = ()) -> None:
        self._hooks = list(hooks)

    def add(self, hook: Hooks) -> None:
        self._hooks.append(hook)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def _each(self, name: str, event: object) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, name)(event)
            except Exception:  # a hook's bug must never stop the run
                log.exception("hook %r failed in %s", hook, name)

    def run_started(self, event: RunEvent) -> None:
        self._each("run_started", event)

    def task_queued(self, event: TaskEvent) -> None:
        self._each("task_queued", event)

    def attempt_started(self, event: AttemptEvent) -> None:
        self._each("attempt_started", event)

    def attempt_finished(self, event: AttemptEvent) -> None:
        self._each("attempt_finished", event)

    def task_finished(self, event: TaskEvent) -> None:
        self._each("task_finished", event)

    def run_finished(self, event: RunEvent) -> None:
        self._each("run_finished", event)


def load(paths: Iterable[str]) -> HookSet:
    """Hooks by ``module:attr`` path; a class is built with no arguments."""
    hooks: list[Hooks] = []
    for path in paths:
        module_name, sep, attr = path.partition(":")
        try:
            if not sep:
                raise ValueError("expected module:attr")
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise errors.ConfigError(f"ORCH_HOOKS: cannot load {path!r}: {exc}") from exc
        hook = obj() if isinstance(obj, type) else obj
        if not isinstance(hook, Hooks):
            raise errors.ConfigError(f"ORCH_HOOKS: {path!r} is not an "
                                     "orchestrator.control.hooks.Hooks")
        hooks.append(hook)
    return HookSet(hooks)
