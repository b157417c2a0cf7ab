"""The store's one entry point: a transaction per call, the work done by the modules
beside it (runs, attempts, advance, mapping, reconcile, reads).

Read-modify-write through the ORM was measured to lose updates on SQLite and on
PostgreSQL under concurrent workers, so nothing here reads a row and writes it back:
each transition is a compare-and-set UPDATE (``store/statements.py``), and a statement
that matches no row means another process got there first.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from orchestrator import errors
from orchestrator.model import plan, records
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.rerun import Reset
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import (
    attempts,
    browse,
    outbox,
    reads,
    reconcile,
    runs,
    schedules,
    tokens,
)
from orchestrator.store import engine as engine_
from orchestrator.store import grid as grid_
from orchestrator.store import logs as logs_
from orchestrator.store import metrics as metrics_
from orchestrator.store import statements as sql
from orchestrator.store.base import StoreBase, _now
from orchestrator.store.facade_backfills import BackfillsMixin
from orchestrator.store.facade_dags import DagsMixin
from orchestrator.store.facade_outbox import OutboxMixin
from orchestrator.store.facade_pools import PoolsMixin
from orchestrator.store.facade_schedules import SchedulesMixin
from orchestrator.store.facade_sensors import SensorsMixin
from orchestrator.store.facade_triggers import TriggersMixin
from orchestrator.store.results import (
    Busy,
    Change,
    Claim,
    GiveUp,
    NewRun,
    NotDue,
    Overdue,
    Rerun,
    RunStart,
    Stalled,
)


class Store(DagsMixin, SensorsMixin, TriggersMixin, SchedulesMixin, PoolsMixin,
            BackfillsMixin, OutboxMixin, StoreBase):
    """State store over SQLAlchemy Core (SQLite or PostgreSQL)."""

    # -- submit ------------------------------------------------------------------------------

    def create_run(self, dag: CompiledDag, *, run_id: str, params: Mapping[str, Any],
                   idempotency_key: str | None = None, start: RunStart | None = None,
                   ) -> NewRun:
        """Write the DAG version (once), the run and one row per task, in one transaction.
        With a key this DAG used before, return that run (same params) or raise Conflict."""
        try:
            with self._tx() as conn:
                if idempotency_key is not None:
                    existing = runs.by_key(conn, dag.id, idempotency_key, params)
                    if existing is not None:
                        return existing
                # a version this process wrote or read is stored: no query for it again
                change = Change(run_id)
                queued = runs.create(conn, dag, run_id=run_id, params=params,
                                     idempotency_key=idempotency_key,
                                     version_stored=dag.version in self._versions,
                                     now=_now(), start=start, change=change)
        except IntegrityError:
            if start is not None and start.logical_time is not None:
                with self._tx(write=False) as conn:
                    schedules.refuse_duplicate(conn, dag.id, start.logical_time)
            if idempotency_key is None:
                raise
            # Another submitter with the same key won the race: theirs is the run.
            with self._tx(write=False) as conn:
                existing = runs.by_key(conn, dag.id, idempotency_key, params)
            if existing is None:
                raise
            return existing
        self._versions.setdefault(dag.version, dag)
        return NewRun(run_id, created=True, queued=None if queued is None else tuple(queued),
                      elsewhere=tuple(change.elsewhere))

    def mark_unsent(self, run_id: str, task_ids: Sequence[str]) -> None:
        """Their messages could not be sent: the reconciler's next pass sends them."""
        with self._tx() as conn:
            runs.mark_unsent(conn, run_id, list(task_ids))

    # -- the worker's hot path -------------------------------------------------------------

    @engine_.retry_transient
    def claim(self, run_id: str, task_id: str, attempt: int, *, worker: str, pid: int,
              lease_seconds: float, data_from: Sequence[str], max_lost: int,
              celery_id: str | None = None, timeout: float | None = None,
              version: str | None = None) -> Claim | GiveUp | Busy | NotDue | None:
        with self._tx() as conn:
            return attempts.claim(conn, run_id, task_id, attempt, worker=worker, pid=pid,
                                  lease_seconds=lease_seconds, data_from=data_from,
                                  max_lost=max_lost, celery_id=celery_id, timeout=timeout,
                                  version=version, now=_now())

    def renew_lease(self, run_id: str, task_id: str, attempt: int, token: str | None,
                    lease_seconds: float) -> bool:
        with self._tx() as conn:
            return attempts.renew_lease(conn, run_id, task_id, attempt, token, lease_seconds)

    @engine_.retry_transient
    def succeed(self, run_id: str, task_id: str, attempt: int, result: Any, p: plan.Plan,
                chosen: Collection[str] | None = None, token: str | None = None) -> Change:
        with self._tx() as conn:
            now = _now()
            change = attempts.succeed(conn, run_id, task_id, attempt, result, p, chosen,
                                      token, now, self._compiled_in)
            outbox.record(conn, p.dag_id, change, p.alerts, self.alert_rules, now)
            return change

    @engine_.retry_transient
    def fail(self, run_id: str, task_id: str, attempt: int, *, error_type: str, message: str,
             traceback: str | None, retry_in: float | None, p: plan.Plan,
             token: str | None = None, worker_lost: bool = False) -> Change:
        with self._tx() as conn:
            now = _now()
            change = attempts.fail(conn, run_id, task_id, attempt, error_type=error_type,
                                   message=message, traceback=traceback, retry_in=retry_in,
                                   p=p, token=token, now=now, worker_lost=worker_lost)
            outbox.record(conn, p.dag_id, change, p.alerts, self.alert_rules, now,
                          error=f"{error_type}: {message}")
            return change

    @engine_.retry_transient
    def expand(self, run_id: str, task_id: str, attempt: int, *, source: str,
               max_active: int | None, max_attempts: int, max_items: int, worker: str,
               p: plan.Plan) -> Change:
        with self._tx() as conn:
            now = _now()
            change = attempts.expand(conn, run_id, task_id, attempt, source=source,
                                     max_active=max_active, max_attempts=max_attempts,
                                     max_items=max_items, worker=worker, p=p, now=now)
            outbox.record(conn, p.dag_id, change, p.alerts, self.alert_rules, now)
            return change

    # -- rerun and cancel ------------------------------------------------------------------

    @engine_.retry_transient
    def rerun(self, run_id: str, reset: Mapping[str, Reset], budgets: Mapping[str, int],
              leaves: Collection[str], redo_instances: Collection[str] = (),
              p: plan.Plan | None = None) -> Rerun:
        """``p``: the run's plan, so tasks that need a pool slot wait for one."""
        with self._tx() as conn:
            now = _now()
            change, numbers = runs.rerun(conn, run_id, reset, budgets, leaves, redo_instances,
                                         now, p)
            if p is not None:
                outbox.record(conn, p.dag_id, change, p.alerts, self.alert_rules, now)
        return Rerun(change, numbers)

    @engine_.retry_transient
    def cancel(self, run_id: str, *, state: RunState = RunState.CANCELLED,
               reason: str = "the run was cancelled") -> Change:
        # The run's plan says whether its slot goes to a queued run (cached per process).
        header = self.header(run_id)
        p = self.compiled(header.version).plan if header.version is not None else None
        with self._tx() as conn:
            now = _now()
            change = runs.stop(conn, run_id, state=state, reason=reason, now=now, p=p)
            outbox.record(conn, header.dag_id, change,
                          None if p is None else p.alerts, self.alert_rules, now,
                          error=reason if state == RunState.FAILED else None)
            return change

    # -- the reconciler --------------------------------------------------------------------

    @property
    def single_writer(self) -> bool:
        """SQLite: one writer at a time, so one reconciler at a time (a lease) is enough."""
        return self.engine.dialect.name == "sqlite"

    @engine_.retry_transient
    def take_stalled(self, *, queued_before: dt.datetime, lost_before: dt.datetime,
                     limit: int = 1000) -> list[Stalled]:
        with self._tx() as conn:
            return reconcile.take_stalled(conn, queued_before=queued_before,
                                          lost_before=lost_before, limit=limit, now=_now())

    def overdue_tasks(self, *, grace: float, limit: int = 100) -> list[Overdue]:
        """Running attempts more than ``grace`` seconds past their timeout: their worker
        should have stopped them (Celery's hard time limit) and did not, or is gone."""
        with self._tx(write=False) as conn:
            return reconcile.overdue_tasks(conn, grace=grace, limit=limit)

    def overdue_runs(self, limit: int = 100) -> list[str]:
        """Running runs past their deadline (their DAG's timeout)."""
        with self._tx(write=False) as conn:
            return reconcile.overdue_runs(conn, limit=limit, now=_now())

    def lead(self, name: str, holder: str, ttl: float, *, wall: float | None = None) -> bool:
        with self._tx() as conn:
            return reconcile.lead(conn, name, holder, ttl, time.time() if wall is None else wall)

    def release(self, name: str, holder: str) -> None:
        """Give the lease up now, so a successor need not wait for it to expire."""
        with self._tx() as conn:
            reconcile.release(conn, name, holder)

    # -- reads -----------------------------------------------------------------------------

    def run_state(self, run_id: str) -> RunState:
        with self._tx(write=False) as conn:
            return reads.run_state(conn, run_id)

    def progress(self, run_id: str) -> dict[TaskState, int]:
        with self._tx(write=False) as conn:
            return reads.progress(conn, run_id)

    def get_run(self, run_id: str, *, with_results: bool = True) -> records.Run:
        with self._tx(write=False) as conn:
            return reads.get_run(conn, run_id, with_results=with_results)

    def list_runs(self, *, dag_id: str | None = None, state: RunState | None = None,
                  limit: int = 50) -> list[records.Run]:
        with self._tx(write=False) as conn:
            return reads.list_runs(conn, dag_id=dag_id, state=state, limit=limit)

    def grid(self, dag_id: str, *, limit: int = 25, cursor: str | None = None,
             ) -> grid_.GridPage:
        """A page of the runs grid: ``limit`` runs newest first (keyset: ``cursor`` from
        the page before), each with one cell per task, in two statements."""
        with self._tx(write=False) as conn:
            return grid_.page(conn, dag_id, limit=limit, cursor=cursor)

    def recent_runs(self, dag_ids: Sequence[str], per_dag: int = 10,
                    ) -> dict[str, list[grid_.GridRun]]:
        with self._tx(write=False) as conn:
            return grid_.recent(conn, dag_ids, per_dag)

    def run_snapshot(self, run_id: str) -> grid_.GridRun:
        with self._tx(write=False) as conn:
            return grid_.snapshot(conn, run_id)

    def result(self, run_id: str, task_id: str) -> tuple[TaskState, Any]:
        with self._tx(write=False) as conn:
            return reads.result(conn, run_id, task_id)

    def resolve_run_id(self, prefix: str) -> str:
        with self._tx(write=False) as conn:
            return reads.resolve_run_id(conn, prefix)

    def attempts_of(self, run_id: str, task_ids: Sequence[str]) -> dict[str, int]:
        with self._tx(write=False) as conn:
            return dict(conn.execute(sql.ATTEMPTS_OF, {"b_run": run_id,
                                                       "b_ids": list(task_ids)}).all())

    # -- attempt logs ----------------------------------------------------------------------

    def append_log(self, run_id: str, task_id: str, attempt: int, seq: int, data: str) -> bool:
        """Add chunk ``seq`` to a running attempt's log. False, never an error, when the
        seq is taken or the attempt is gone or ended (a worker taken over writes late)."""
        try:
            with self._tx() as conn:
                return logs_.append(conn, run_id, task_id, attempt, seq, data, _now())
        except IntegrityError:
            return False

    @engine_.retry_transient
    def read_logs(self, run_id: str, task_id: str, attempt: int | None = None, *,
                  after: int = 0, limit: int = 1000) -> tuple[int, list[records.LogChunk]]:
        """(the attempt read, the latest when None; its chunks with seq > ``after``, in
        order). Raises UnknownRun, UnknownTask or UnknownAttempt."""
        with self._tx(write=False) as conn:
            return logs_.read(conn, run_id, task_id, attempt, after=after, limit=limit)

    @engine_.retry_transient
    def attempt_outcome(self, run_id: str, task_id: str, attempt: int | None = None,
                        ) -> tuple[int, AttemptOutcome]:
        """(the attempt, the latest when None; its outcome): a log is complete once the
        outcome is not ``running`` (the worker's last flush comes before it)."""
        with self._tx(write=False) as conn:
            return logs_.outcome(conn, run_id, task_id, attempt)

    @engine_.retry_transient
    def metrics(self) -> metrics_.Snapshot:
        """Aggregates for the metrics endpoint, each computed by the database."""
        with self._tx(write=False) as conn:
            return metrics_.snapshot(conn, _now())

    def count_rows(self) -> dict[str, int]:
        """Rows per table: lets tests prove a rejected request wrote nothing (the tables
        the schema has so far: a migration test reads an older one)."""
        with self._tx(write=False) as conn:
            present = set(inspect(conn).get_table_names())
            return {name: conn.execute(q).scalar_one() for name, q in sql.ROW_COUNTS.items()
                    if name in present}

    # -- pages of runs, health, API tokens (the server) -------------------------------------

    @engine_.retry_transient
    def runs_page(self, dag_id: str | None = None, state: RunState | str | None = None,
                  limit: int = 50, cursor: str | None = None, *, with_params: bool = True,
                  ) -> tuple[list[records.Run], str | None]:
        """Runs newest first by (created_at, id), after ``cursor`` (a page's next cursor,
        opaque); returns them and the next page's cursor, or None on the last page."""
        if state is not None and not isinstance(state, RunState):
            try:
                state = RunState(state)
            except ValueError:
                raise errors.InvalidArgument(
                    f"unknown run state {state!r}; one of: "
                    f"{', '.join(s.value for s in RunState)}") from None
        with self._tx(write=False) as conn:
            return browse.runs_page(conn, dag_id=dag_id, state=state, limit=limit,
                                    cursor=cursor, with_params=with_params)

    def ping(self) -> None:
        """Raise unless the database answers (``unreachable`` tells the errors apart)."""
        with self._tx(write=False) as conn:
            browse.ping(conn)

    def create_token(self, name: str | None, role: str) -> tuple[str, str]:
        """A new API token: (its id, the token, which is shown once and never stored)."""
        with self._tx() as conn:
            return tokens.create(conn, name, role, _now())

    def list_tokens(self) -> list[records.ApiToken]:
        with self._tx(write=False) as conn:
            return tokens.list_all(conn)

    def revoke_token(self, id_or_name: str) -> None:
        with self._tx() as conn:
            tokens.revoke(conn, id_or_name, _now())

    @engine_.retry_transient
    def principal(self, token: str) -> records.ApiToken | None:
        """The live token this is (by its hash), or None. Records the use at most once a
        minute per token, so a request costs a read, not a write."""
        with self._tx(write=False) as conn:
            found = tokens.find(conn, token)
        now = _now()
        if found is not None and tokens.needs_touch(found, now):
            with self._tx() as conn:
                tokens.touch(conn, found.id, now)
        return found
