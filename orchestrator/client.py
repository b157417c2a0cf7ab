"""The Python client: submit runs, wait for them, read their state and results.

``Client()`` reads the same ``ORCH_*`` settings as workers (and, in a folder where
``orchestrator up`` runs, finds that stack). Submitting validates the DAG and params
before anything is written or sent; a rejected submit changes nothing. Commands and
reads go to control and the store; the client adds no rules of its own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator import errors
from orchestrator.authoring import discovery
from orchestrator.control.backfills import Accepted, Backfills
from orchestrator.control.commands import Submission
from orchestrator.control.triggers import Events
from orchestrator.model import records
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import FINISHED_RUN, AttemptOutcome, RunState, TaskState
from orchestrator.settings import Settings
from orchestrator.store.triggers import EmitResult
from orchestrator.transport import wakeups
from orchestrator.wiring import Wiring

ProgressCallback = Callable[[dict[TaskState, int], int], None]


class Client:
    """Parameters override the matching ``ORCH_*`` settings."""

    def __init__(self, settings: Settings | None = None, *, broker_url: str | None = None,
                 database_url: str | None = None, dags_path: str | None = None) -> None:
        s = settings or Settings()
        overrides = {k: v for k, v in {"ORCH_BROKER_URL": broker_url,
                                        "ORCH_DATABASE_URL": database_url,
                                        "ORCH_DAGS_PATH": dags_path}.items() if v is not None}
        self.settings = s.with_env(**overrides) if overrides else s
        self._wiring = Wiring(self.settings)
        self.store = self._wiring.store  # fails here, in one line, on a schema that is behind

    def close(self) -> None:
        self._wiring.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dagbag(self) -> discovery.DagBag:
        return self._wiring.bag

    def dags(self) -> list[CompiledDag]:
        return sorted(self.dagbag.dags.values(), key=lambda d: d.id)

    def dag_errors(self) -> dict[str, errors.DagError]:
        """The DAG files that failed to load, by path, each with its error (which names
        the file and, where known, the line); the good ones load all the same."""
        return dict(self.dagbag.errors)

    def dag(self, dag_id: str) -> CompiledDag:
        return self.dagbag.get(dag_id)

    def submit(self, dag_id: str, params: Mapping[str, Any] | None = None, *,
               idempotency_key: str | None = None,
               logical_time: dt.datetime | None = None) -> str:
        """Start a run; returns its id. With an idempotency key this DAG used before (with
        the same params), returns that run's id and creates nothing. A ``logical_time``
        (naive: UTC) is the run's, as a scheduled run's tick is: one run per DAG has it."""
        return self.submit_run(dag_id, params, idempotency_key=idempotency_key,
                               logical_time=logical_time).run_id

    def submit_run(self, dag_id: str, params: Mapping[str, Any] | None = None, *,
                   idempotency_key: str | None = None,
                   logical_time: dt.datetime | None = None) -> Submission:
        """Like :meth:`submit`, and says whether the run was new and sent (``sent`` is
        False when the broker went away after the run was written: the coordinator sends
        it once the broker is back)."""
        return self._wiring.commands.submit(self.dagbag.get(dag_id), params,
                                            idempotency_key=idempotency_key,
                                            logical_time=logical_time)

    def emit(self, name: str, payload: Any = None) -> EmitResult:
        """Emit named event ``name``: each DAG scheduled on it (``schedule={"event":
        name}``) and not paused gets a run whose tasks read ``payload``; a paused one
        leaves it pending. Returns the event id and the runs it started or queued."""
        return Events(self.settings, self._wiring.outcomes).emit(name, payload)

    def backfill(self, dag_id: str, start: dt.datetime, end: dt.datetime, *,
                 reprocess: str = "none", max_active: int = 1,
                 dry_run: bool = False) -> Accepted:
        """Run ``dag_id`` once per logical time of its schedule in [start, end), oldest
        first, ``max_active`` at a time, each created as an earlier one ends. ``reprocess``
        says what a logical time that has a run gets: ``none`` (left), ``failed`` (its
        failed tasks rerun if it failed) or ``all`` (rerun from its roots). ``dry_run``:
        the count and first and last logical times only."""
        return Backfills(self.settings, self._wiring.outcomes).start(
            self.dagbag.get(dag_id), start, end, reprocess=reprocess, max_active=max_active,
            dry_run=dry_run)

    def cancel_backfill(self, backfill_id: str) -> list[str]:
        """Stop a backfill: no more runs; its runs going are cancelled (returned)."""
        return Backfills(self.settings, self._wiring.outcomes).cancel(backfill_id)

    def pause(self, dag_id: str) -> None:
        """Pause a DAG: no scheduled, triggered or backfill runs; its events stay pending."""
        Events(self.settings, self._wiring.outcomes).set_paused(dag_id, True)

    def unpause(self, dag_id: str) -> list[str]:
        """Unpause a DAG: its schedule fires again, and its pending events start runs
        (returned: started, or queued for a run slot)."""
        return Events(self.settings, self._wiring.outcomes).set_paused(dag_id, False).runs

    def set_pool(self, name: str, slots: int | None,
                 description: str | None = None) -> records.Pool:
        """Create pool ``name`` or change its slots (None: unbounded). Waiters a bigger
        pool has room for are sent by the coordinator's next pass."""
        return self.store.set_pool(name, slots, description)

    def pools(self) -> list[records.Pool]:
        """Every pool with its slots and what its tasks hold and wait for."""
        return self.store.pools()

    def notifications(self, run_id: str | None = None, *, state: str | None = None,
                      limit: int = 100) -> list[records.Notification]:
        """Alerts from the outbox, each with every try to deliver it: a run's (oldest
        first; raises UnknownRun) or the latest ``limit`` of all (newest first), only
        those in ``state`` (pending, sending, delivered, failed) when given. They never
        carry the target (URL, addresses, secret)."""
        return self.store.notifications(run_id, state=state, limit=limit)

    def notification(self, notification_id: str) -> records.Notification:
        """One alert by its id (the dedupe key receivers get) or a unique prefix."""
        return self.store.notification(notification_id)

    def resolve(self, run_id: str) -> str:
        """The full id of the run a unique prefix names."""
        return run_id if len(run_id) == 32 else self.store.resolve_run_id(run_id)

    def cancel(self, run_id: str) -> None:
        """Cancel a running run: queued tasks never start, running ones are terminated,
        and the run ends ``cancelled``. Raises :class:`Conflict` if it already ended."""
        self._wiring.commands.cancel(run_id)

    def rerun(self, run_id: str, *, from_task: str | None = None) -> list[str]:
        """Continue a finished run: rerun its failed and upstream_failed tasks (or
        ``from_task`` and everything downstream of it), keeping every other result.
        A mapped task rerun from failure runs again only its instances that did not
        succeed. Returns the task ids reset, in dependency order."""
        return self._wiring.commands.rerun(run_id, from_task=from_task)

    def get_run(self, run_id: str) -> records.Run:
        return self.store.get_run(run_id)

    def runs(self, *, dag_id: str | None = None, state: str | None = None,
             limit: int = 50) -> list[records.Run]:
        return self.store.list_runs(dag_id=dag_id, state=_run_state(state), limit=limit)

    def result(self, run_id: str, task_id: str) -> Any:
        """A task's return value; raises :class:`TaskNotFinished` unless it succeeded."""
        state, value = self.store.result(run_id, task_id)
        if state != TaskState.SUCCESS:
            raise errors.TaskNotFinished(f"task {task_id!r} of run {run_id!r} is {state}, "
                                         "it has no result")
        return value

    def log_chunks(self, run_id: str, task_id: str, attempt: int | None = None, *,
                   after: int = 0, limit: int = 1000) -> tuple[int, list[records.LogChunk]]:
        """An attempt's log chunks after sequence number ``after`` (the latest attempt
        when None): (the attempt read, its chunks in order)."""
        return self.store.read_logs(run_id, task_id, attempt, after=after, limit=limit)

    def logs(self, run_id: str, task_id: str, attempt: int | None = None) -> str:
        """An attempt's whole log as written so far (the latest attempt when None)."""
        number, chunks = self.log_chunks(run_id, task_id, attempt)
        parts = [c.data for c in chunks]
        while chunks:
            _, chunks = self.log_chunks(run_id, task_id, number, after=chunks[-1].seq)
            parts += [c.data for c in chunks]
        return "".join(parts)

    def attempt_outcome(self, run_id: str, task_id: str, attempt: int | None = None,
                        ) -> tuple[int, AttemptOutcome]:
        """(the attempt, the latest when None; its outcome): its log is complete once the
        outcome is not ``running``."""
        return self.store.attempt_outcome(run_id, task_id, attempt)

    def wait(self, run_id: str, timeout: float | None = None, *,
             on_progress: ProgressCallback | None = None) -> records.Run:
        """Block until the run finishes; returns it with every task and attempt.

        Woken by the worker that ends the run (Redis pub/sub); the database is checked on
        every wake-up and at least once a second, so a lost notification costs one second."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sub = None
        if self.settings.broker.url:
            try:
                sub = wakeups.subscribe(self.settings.broker.url)
            except Exception:  # no broker: poll the database instead
                sub = None
        try:
            while True:
                if self.store.run_state(run_id) in FINISHED_RUN:
                    return self.store.get_run(run_id)
                if on_progress is not None:
                    counts = self.store.progress(run_id)
                    # counted each time: a mapped task adds its instances as it starts
                    on_progress(counts, sum(counts.values()))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    state = self.store.run_state(run_id)
                    raise errors.WaitTimeout(f"run {run_id!r} is still {state} after "
                                             f"{timeout} s")
                step = 0.25 if on_progress else 1.0
                step = step if left is None else max(0.0, min(step, left))
                if sub is not None:
                    sub.get_message(timeout=step)
                else:
                    time.sleep(min(step, 0.05))
        finally:
            if sub is not None:
                sub.close()


def _run_state(state: str | None) -> RunState | None:
    if state is None:
        return None
    try:
        return RunState(state)
    except ValueError:
        raise errors.InvalidArgument(f"unknown run state {state!r}; one of: "
                                 f"{', '.join(s.value for s in RunState)}") from None
