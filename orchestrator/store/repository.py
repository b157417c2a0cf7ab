"""The only module that talks SQL. Every state change is a compare-and-set UPDATE.

Read-modify-write through the ORM was measured to lose updates on SQLite and on
PostgreSQL under concurrent workers, so nothing here reads a row and writes it back:
each transition says in its WHERE clause which state and attempt it expects, and a
statement that matches no row means another process got there first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from orchestrator import errors
from orchestrator.model import plan, records, spec
from orchestrator.model.states import (
    FINISHED_TASK,
    UNFINISHED_TASK,
    AttemptOutcome,
    RunState,
    TaskState,
)
from orchestrator.store import advance, mapping
from orchestrator.store import engine as engine_
from orchestrator.store import statements as sql
from orchestrator.store.tables import attempts, leases, runs, task_instances

ti = task_instances


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class NewRun:
    run_id: str
    created: bool


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claimed attempt: what the worker needs to run it."""

    attempt: int
    lost_attempts: int
    max_attempts: int
    """Retry while ``attempt - lost_attempts`` is below this (a rerun raises it)."""
    params: dict[str, Any]
    upstream: dict[str, Any]
    item: Any = None
    """For an instance of a mapped task: its item."""
    token: str | None = None
    """Fences this claim: its result and lease renewals count only while it holds."""


@dataclasses.dataclass(frozen=True)
class GiveUp:
    """Fail the lost attempt instead of taking it over: its worker was lost too many
    times (no retries: a task that keeps killing its worker must not loop), or it is
    past its timeout (retries as for any timeout)."""

    attempt: int
    lost_attempts: int
    max_attempts: int = 0
    error_type: str = "WorkerLost"
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Busy:
    """The task is running under a live lease; look again when it expires."""

    lease_expires_at: float
    attempt: int
    """The attempt that holds the lease (the message may name an older one)."""


@dataclasses.dataclass(frozen=True)
class Advance:
    """What a finished attempt changed: tasks now ready, and the run's end if it ended."""

    applied: bool
    ready: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    run_state: RunState | None = None
    retry_attempt: int | None = None


@dataclasses.dataclass(frozen=True)
class Stalled:
    """A task the database says should be progressing but is not."""

    run_id: str
    dag_id: str
    task_id: str
    attempt: int
    state: TaskState
    queued_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Overdue:
    """A running attempt past its timeout that its worker did not stop."""

    run_id: str
    dag_id: str
    task_id: str
    attempt: int
    lost_attempts: int
    max_attempts: int
    celery_id: str | None


@dataclasses.dataclass(frozen=True)
class Rerun:
    """Tasks a rerun made ready (with their new attempts), every new attempt number, and
    the run's end if the rerun had nothing left to run."""

    ready: list[tuple[str, int]]
    attempts: dict[str, int]
    run_state: RunState | None = None


class Store:
    """State store over SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = engine_.make_engine(url)
        self._writer = engine_.WriterLock(self.engine)
        if migrate:
            try:
                engine_.migrate(self.engine)
            except OperationalError as exc:
                raise errors.StoreError(f"cannot reach database {self.engine.url!r}: "
                                        f"{exc.orig}") from exc
        self._params_cache: dict[str, dict[str, Any]] = {}

    def dispose(self) -> None:
        self.engine.dispose()
        self._writer.close()

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Connection]:
        with (self._writer.hold() if write else nullcontext()), self.engine.connect() as conn:
            conn.execution_options(**{engine_.WRITE: write})
            with conn.begin():
                yield conn

    # -- submit ------------------------------------------------------------------------

    def create_run(self, *, run_id: str, dag_id: str, params: Mapping[str, Any],
                   upstream: Mapping[str, Sequence[str]], max_attempts: Mapping[str, int],
                   idempotency_key: str | None = None,
                   initial: Collection[str] | None = None,
                   timeout: float | None = None) -> NewRun:
        """Write the run and one row per task in one transaction; ``initial`` tasks (by
        default the roots) start queued."""
        now = _now()
        first = set(initial) if initial is not None else {n for n, u in upstream.items()
                                                           if not u}
        rows = [{"run_id": run_id, "task_id": node,
                 "state": TaskState.QUEUED if node in first else TaskState.PENDING,
                 "attempt": 1, "max_attempts": max_attempts[node], "lost_attempts": 0,
                 "remaining": len(ups), "failed_up": 0, "skipped_up": 0,
                 "queued_at": now if node in first else None}
                for node, ups in upstream.items()]
        try:
            with self._tx() as conn:
                if idempotency_key is not None:
                    existing = self._run_by_key(conn, dag_id, idempotency_key)
                    if existing is not None:
                        return NewRun(existing, created=False)
                conn.execute(insert(runs).values(
                    id=run_id, dag_id=dag_id, state=RunState.RUNNING, params=dict(params),
                    idempotency_key=idempotency_key, total_tasks=len(rows),
                    unfinished=len(rows), failed_tasks=0, created_at=now,
                    deadline=now + dt.timedelta(seconds=timeout) if timeout else None))
                conn.execute(insert(ti), rows)
        except IntegrityError:
            if idempotency_key is None:
                raise
            # Another submitter with the same key won the race: theirs is the run.
            with self._tx(write=False) as conn:
                existing = self._run_by_key(conn, dag_id, idempotency_key)
            if existing is None:
                raise
            return NewRun(existing, created=False)
        return NewRun(run_id, created=True)

    @staticmethod
    def _run_by_key(conn: Connection, dag_id: str, key: str) -> str | None:
        return conn.execute(select(runs.c.id).where(
            runs.c.dag_id == dag_id, runs.c.idempotency_key == key)).scalar()

    def attempts_of(self, run_id: str, task_ids: Sequence[str]) -> dict[str, int]:
        with self._tx(write=False) as conn:
            return dict(conn.execute(select(ti.c.task_id, ti.c.attempt).where(
                ti.c.run_id == run_id, ti.c.task_id.in_(task_ids))).all())

    # -- worker hot path -----------------------------------------------------------------

    @engine_.retry_transient
    def claim(self, run_id: str, task_id: str, attempt: int, *, worker: str, pid: int,
              lease_seconds: float, data_from: Sequence[str], max_lost: int,
              celery_id: str | None = None,
              timeout: float | None = None) -> Claim | GiveUp | Busy | None:
        """Move a queued attempt to running; None if it is not ours to run.

        A message for an attempt that is running under an expired lease means its
        worker was lost: the next attempt takes over, up to ``max_lost`` times."""
        now = _now()
        wall = time.time()
        key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
        token = uuid.uuid4().hex
        deadline = wall + timeout if timeout is not None else None
        with self._tx() as conn:
            row = conn.execute(sql.CLAIM, {**key, "b_now": now, "b_worker": worker,
                                           "b_lease": wall + lease_seconds, "b_token": token,
                                           "b_deadline": deadline}).first()
            if row is not None:
                lost, max_attempts, item = row.lost_attempts, row.max_attempts, row.map_item
            else:
                taken = self._take_over(conn, key, now=now, wall=wall, worker=worker,
                                        lease_seconds=lease_seconds, max_lost=max_lost,
                                        token=token, deadline=deadline)
                if not isinstance(taken, tuple):
                    return taken
                lost, max_attempts, attempt, item = taken
                key["b_attempt"] = attempt
            conn.execute(sql.START_ATTEMPT, {**key, "b_worker": worker, "b_pid": pid,
                                             "b_celery_id": celery_id, "b_now": now})
            params = self._params(conn, run_id)
            upstream: dict[str, Any] = {}
            if data_from:
                upstream = dict(conn.execute(sql.RESULTS_OF, {"b_run": run_id,
                                                              "b_ids": list(data_from)}).all())
        return Claim(attempt, lost, max_attempts, params, upstream, item, token)

    @staticmethod
    def _take_over(conn: Connection, key: dict[str, Any], *, now: dt.datetime, wall: float,
                   worker: str, lease_seconds: float, max_lost: int, token: str,
                   deadline: float | None) -> tuple[int, int, int, Any] | GiveUp | Busy | None:
        """The attempt is not claimable: is the task running under a lease nobody renews?

        The message may name an older attempt than the row (a message redelivered after an
        earlier takeover): starting a *new* attempt from it is safe, because the takeover is
        a compare-and-set on the row's current attempt and results are fenced by it."""
        run_id, task_id, attempt = key["b_run"], key["b_task"], key["b_attempt"]
        row = conn.execute(select(ti.c.state, ti.c.attempt, ti.c.lost_attempts,
                                  ti.c.max_attempts, ti.c.lease_expires_at,
                                  ti.c.map_item, ti.c.deadline).where(
            ti.c.run_id == run_id, ti.c.task_id == task_id)).first()
        if row is None or row.state != TaskState.RUNNING or row.attempt < attempt:
            return None
        current = row.attempt
        if (row.lease_expires_at or 0) >= wall:
            return Busy(row.lease_expires_at, current)
        if row.deadline is not None and row.deadline < wall:
            return GiveUp(current, row.lost_attempts, row.max_attempts, "TaskTimeout",
                          "exceeded its timeout, and its worker was lost")
        if row.lost_attempts + 1 >= max_lost:
            return GiveUp(current, row.lost_attempts,
                          message=f"the worker running this task was lost "
                                  f"{row.lost_attempts + 1} times")
        took = conn.execute(update(ti).where(
            ti.c.run_id == run_id, ti.c.task_id == task_id, ti.c.attempt == current,
            ti.c.state == TaskState.RUNNING, ti.c.lease_expires_at < wall,
        ).values(attempt=current + 1, lost_attempts=ti.c.lost_attempts + 1,
                 started_at=now, worker=worker, lease_expires_at=wall + lease_seconds,
                 token=token, deadline=deadline))
        if took.rowcount != 1:
            return None
        conn.execute(update(attempts).where(
            attempts.c.run_id == run_id, attempts.c.task_id == task_id,
            attempts.c.attempt == current,
        ).values(outcome=AttemptOutcome.LOST, finished_at=now, error_type="WorkerLost",
                 error_message="the worker stopped renewing its lease"))
        return row.lost_attempts + 1, row.max_attempts, current + 1, row.map_item


    def _params(self, conn: Connection, run_id: str) -> dict[str, Any]:
        # Params never change after submit, so a worker reads them once per run.
        cached = self._params_cache.get(run_id)
        if cached is None:
            cached = conn.execute(sql.PARAMS_OF, {"b_run": run_id}).scalar()
            if cached is None:
                raise errors.UnknownRun(f"run {run_id!r} is not in the database")
            if len(self._params_cache) > 1000:
                self._params_cache.clear()
            self._params_cache[run_id] = cached
        return cached

    def renew_lease(self, run_id: str, task_id: str, attempt: int, token: str | None,
                    lease_seconds: float) -> bool:
        with self._tx() as conn:
            res = conn.execute(sql.RENEW_LEASE, {"b_run": run_id, "b_task": task_id,
                                                 "b_attempt": attempt, "b_token": token,
                                                 "b_lease": time.time() + lease_seconds})
            return res.rowcount == 1

    @engine_.retry_transient
    def succeed(self, run_id: str, task_id: str, attempt: int, result: Any, p: plan.Plan,
                chosen: Collection[str] | None = None, token: str | None = None) -> Advance:
        """Record success and decide, in the same transaction, which successors are ready.

        ``chosen``: for a branching task, the children to follow; the others are skipped.
        ``token``: the claim's; a result from a claim that no longer holds is refused."""
        now = _now()
        key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
        with self._tx() as conn:
            res = conn.execute(sql.SUCCEED, {**key, "b_result": result, "b_now": now,
                                             "b_token": token})
            if res.rowcount != 1:
                return Advance(applied=False)
            conn.execute(sql.END_ATTEMPT, {**key, "b_outcome": AttemptOutcome.SUCCESS,
                                           "b_now": now})
            ready, run_state = self._hand_on(conn, run_id, task_id, TaskState.SUCCESS, chosen,
                                             p, now)
        return Advance(True, ready, run_state)

    @engine_.retry_transient
    def fail(self, run_id: str, task_id: str, attempt: int, *, error_type: str,
             message: str, traceback: str | None, retry: bool, p: plan.Plan,
             token: str | None = None) -> Advance:
        """Record a failed attempt: schedule the next one, or fail the task and let its
        downstream tasks' trigger rules decide what follows."""
        now = _now()
        with self._tx() as conn:
            values: dict[str, Any] = {"error": f"{error_type}: {message}",
                                      "lease_expires_at": None, "deadline": None}
            if retry:
                values.update(state=TaskState.UP_FOR_RETRY, attempt=attempt + 1,
                              queued_at=now)
            else:
                values.update(state=TaskState.FAILED, finished_at=now)
            holder = [ti.c.token == token] if token is not None else []
            res = conn.execute(update(ti).where(
                ti.c.run_id == run_id, ti.c.task_id == task_id, ti.c.attempt == attempt,
                ti.c.state == TaskState.RUNNING, *holder).values(**values))
            if res.rowcount != 1:
                return Advance(applied=False)
            self._end_attempt(conn, run_id, task_id, attempt, AttemptOutcome.FAILED, now,
                              error_type=error_type, error_message=message,
                              traceback=traceback)
            if retry:
                return Advance(True, retry_attempt=attempt + 1)
            ready, run_state = self._hand_on(conn, run_id, task_id, TaskState.FAILED, None,
                                             p, now)
        return Advance(True, ready, run_state)

    @staticmethod
    def _hand_on(conn: Connection, run_id: str, task_id: str, outcome: TaskState,
                 chosen: Collection[str] | None, p: plan.Plan,
                 now: dt.datetime) -> tuple[list[tuple[str, int]], RunState | None]:
        """Hand a finished task's outcome to its children (or a mapped instance's to its
        mapped task) and count it down in the run: what became ready, and the run's end."""
        parent, index = spec.split_task_id(task_id)
        if index is None:
            ready, finished, failed = advance.propagate(conn, run_id, p,
                                                        [(task_id, outcome, chosen)], now)
        else:
            ended = mapping.instance_done(conn, run_id, parent,
                                          failed=outcome == TaskState.FAILED, p=p, now=now)
            ready, finished, failed = ended.ready, ended.finished, ended.failed_leaves
        return ready, advance.count_down(conn, run_id, finished=1 + finished, failed=failed,
                                         now=now)

    @engine_.retry_transient
    def expand(self, run_id: str, task_id: str, attempt: int, *, source: str,
               max_active: int | None, max_attempts: int, max_items: int, worker: str,
               p: plan.Plan) -> Advance:
        """Start mapped task ``task_id`` over the list ``source`` returned: write its
        instances and return the ones to send now (see :mod:`.mapping`). A list that
        cannot be mapped fails the task; an empty one succeeds it with ``[]``."""
        now = _now()
        key = {"b_run": run_id, "b_task": task_id, "b_attempt": attempt}
        with self._tx() as conn:
            res = conn.execute(sql.START_MAPPED, {**key, "b_now": now, "b_worker": worker})
            if res.rowcount != 1:
                return Advance(applied=False)
            items = conn.execute(sql.RESULT_OF, {"b_run": run_id, "b_task": source}).scalar()
            error = mapping.problem(items, source, max_items)
            ready: list[tuple[str, int]] = []
            if error is None and isinstance(items, list):
                ready = mapping.lay_out(conn, run_id, task_id, items, max_active=max_active,
                                        max_attempts=max_attempts, now=now)
            if error is not None or not ready:
                ended = mapping.end(conn, run_id, task_id, p=p, now=now,
                                    error=error and f"MapError: {error}")
                return Advance(True, ended.ready, advance.count_down(
                    conn, run_id, finished=ended.finished, failed=ended.failed_leaves,
                    now=now))
        return Advance(True, ready)

    @staticmethod
    def _end_attempt(conn: Connection, run_id: str, task_id: str, attempt: int,
                     outcome: AttemptOutcome, now: dt.datetime, **error: Any) -> None:
        conn.execute(update(attempts).where(
            attempts.c.run_id == run_id, attempts.c.task_id == task_id,
            attempts.c.attempt == attempt,
        ).values(outcome=outcome, finished_at=now, **error))

    # -- reconciler ----------------------------------------------------------------------

    @property
    def single_writer(self) -> bool:
        """SQLite: one writer at a time, so one reconciler at a time (a lease) is enough."""
        return self.engine.dialect.name == "sqlite"

    @engine_.retry_transient
    def take_stalled(self, *, queued_before: dt.datetime, lost_before: dt.datetime,
                     limit: int = 1000) -> list[Stalled]:
        """Queued (or due for retry) tasks sent before ``queued_before`` that no worker took,
        and running tasks whose lease expired and that were not sent again since
        ``lost_before``: the caller is to send them again.

        Each is taken by one caller only: the rows are locked (on PostgreSQL ``FOR UPDATE
        SKIP LOCKED``, so coordinators running at once take disjoint rows, never waiting
        on each other) and their ``queued_at`` moves on in the same transaction."""
        wall = time.time()
        waiting = ti.c.state.in_([TaskState.QUEUED, TaskState.UP_FOR_RETRY]) & (
            ti.c.queued_at < queued_before)
        lost = (ti.c.state == TaskState.RUNNING) & (ti.c.lease_expires_at < wall) & (
            ti.c.queued_at < lost_before)
        q = (select(ti.c.run_id, runs.c.dag_id, ti.c.task_id, ti.c.attempt, ti.c.state,
                    ti.c.queued_at)
             .join(runs, runs.c.id == ti.c.run_id)
             .where(runs.c.state == RunState.RUNNING, waiting | lost)
             .order_by(ti.c.queued_at).limit(limit)
             .with_for_update(skip_locked=True, of=ti))
        with self._tx() as conn:
            rows = conn.execute(q).all()
            if rows:
                conn.execute(sql.MARK_RESENT, [
                    {"b_run": r.run_id, "b_task": r.task_id, "b_attempt": r.attempt,
                     "b_now": _now()} for r in rows])
        return [Stalled(r.run_id, r.dag_id, r.task_id, r.attempt, TaskState(r.state),
                        r.queued_at) for r in rows]

    def overdue_tasks(self, *, grace: float, limit: int = 100) -> list[Overdue]:
        """Running attempts more than ``grace`` seconds past their timeout: their worker
        should have stopped them (Celery's hard time limit) and did not, or is gone."""
        q = (select(ti.c.run_id, runs.c.dag_id, ti.c.task_id, ti.c.attempt,
                    ti.c.lost_attempts, ti.c.max_attempts, attempts.c.celery_id)
             .join(runs, runs.c.id == ti.c.run_id)
             .outerjoin(attempts, (attempts.c.run_id == ti.c.run_id)
                        & (attempts.c.task_id == ti.c.task_id)
                        & (attempts.c.attempt == ti.c.attempt))
             .where(runs.c.state == RunState.RUNNING, ti.c.state == TaskState.RUNNING,
                    ti.c.deadline < time.time() - grace)
             .limit(limit))
        with self._tx(write=False) as conn:
            return [Overdue(*r) for r in conn.execute(q).all()]

    def overdue_runs(self, limit: int = 100) -> list[str]:
        """Running runs past their deadline (their DAG's timeout)."""
        with self._tx(write=False) as conn:
            return list(conn.execute(select(runs.c.id).where(
                runs.c.state == RunState.RUNNING, runs.c.deadline < _now(),
            ).limit(limit)).scalars())

    def lead(self, name: str, holder: str, ttl: float, *, wall: float | None = None) -> bool:
        """Hold the lease ``name`` for ``ttl`` more seconds: True if ``holder`` has it now
        (it was free, had expired, or was already theirs)."""
        wall = time.time() if wall is None else wall
        try:
            with self._tx() as conn:
                took = conn.execute(update(leases).where(
                    leases.c.name == name,
                    (leases.c.holder == holder) | (leases.c.expires_at < wall),
                ).values(holder=holder, expires_at=wall + ttl))
                if took.rowcount == 1:
                    return True
                if conn.execute(select(leases.c.name).where(leases.c.name == name)).first():
                    return False
                conn.execute(insert(leases).values(name=name, holder=holder,
                                                   expires_at=wall + ttl))
                return True
        except IntegrityError:
            return False  # another holder created it first

    def release(self, name: str, holder: str) -> None:
        """Give the lease up now, so a successor need not wait for it to expire."""
        with self._tx() as conn:
            conn.execute(delete(leases).where(leases.c.name == name,
                                              leases.c.holder == holder))

    # -- rerun ---------------------------------------------------------------------------

    @engine_.retry_transient
    def rerun(self, run_id: str, reset: Mapping[str, tuple[TaskState, int, int, int]],
              budgets: Mapping[str, int], leaves: Collection[str],
              redo_instances: Collection[str] = ()) -> Rerun:
        """Reset finished tasks of a finished run to ``(state, remaining, failed_up,
        skipped_up)`` as new attempts. The instances of the mapped tasks in
        ``redo_instances`` are set back to pending, so the mapped task's next expansion
        runs them all (otherwise it keeps those that succeeded).

        The attempt number of every reset task goes up by one, so a message of the old
        attempt still in flight is rejected by the claim. Results of tasks not reset stay.
        Raises :class:`Conflict` (and changes nothing) if the run is not finished."""
        now = _now()
        with self._tx() as conn:
            moved = conn.execute(update(runs).where(
                runs.c.id == run_id, runs.c.state.in_([RunState.SUCCESS, RunState.FAILED,
                                                       RunState.CANCELLED]),
            ).values(state=RunState.RUNNING, finished_at=None))
            if moved.rowcount != 1:
                self.run_state(run_id)  # UnknownRun if there is no such run
                raise errors.Conflict(f"run {run_id!r} is still running: wait for it or "
                                      "cancel it before a rerun")
            attempts_now: dict[str, int] = {}
            for task_id, (state, remaining, failed_up, skipped_up) in reset.items():
                skipped = state in (TaskState.UPSTREAM_FAILED, TaskState.SKIPPED)
                new_attempt = conn.execute(update(ti).where(
                    ti.c.run_id == run_id, ti.c.task_id == task_id,
                    ti.c.state.in_(FINISHED_TASK),
                ).values(
                    state=state, remaining=remaining, failed_up=failed_up,
                    skipped_up=skipped_up, attempt=ti.c.attempt + 1,
                    max_attempts=ti.c.attempt - ti.c.lost_attempts + budgets[task_id],
                    result=None, worker=None, lease_expires_at=None, started_at=None,
                    error="settled by upstream tasks that were not rerun" if skipped else None,
                    finished_at=now if skipped else None,
                    queued_at=now if state == TaskState.QUEUED else None,
                ).returning(ti.c.attempt)).scalar()
                if new_attempt is None:
                    raise errors.Conflict(f"task {task_id!r} of run {run_id!r} is not finished")
                attempts_now[task_id] = new_attempt
            for chunk in advance.chunks(list(redo_instances)):
                conn.execute(update(ti).where(ti.c.run_id == run_id,
                                              ti.c.map_parent.in_(chunk)).values(
                    state=TaskState.PENDING))
            counts: dict[str, int] = dict(conn.execute(select(ti.c.state, func.count()).where(
                ti.c.run_id == run_id).group_by(ti.c.state)).all())
            unfinished = sum(n for st, n in counts.items() if st not in FINISHED_TASK)
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                unfinished=unfinished, failed_tasks=self._failed_leaves(conn, run_id, leaves)))
            run_state = (advance.count_down(conn, run_id, finished=0, failed=0, now=now)
                         if unfinished == 0 else None)
        ready = [(t, attempts_now[t]) for t, (st, *_) in reset.items() if st == TaskState.QUEUED]
        return Rerun(ready, attempts_now, run_state)

    # -- cancel ----------------------------------------------------------------------------

    @engine_.retry_transient
    def cancel(self, run_id: str, *, state: RunState = RunState.CANCELLED,
               reason: str = "the run was cancelled") -> list[str]:
        """End a running run (cancelled, or failed when it timed out): no task of it starts
        any more. Returns the Celery ids of the attempts running now, for the caller to
        terminate. A worker that finishes one later finds its task cancelled and records
        nothing."""
        now = _now()
        with self._tx() as conn:
            moved = conn.execute(update(runs).where(
                runs.c.id == run_id, runs.c.state == RunState.RUNNING,
            ).values(state=state, finished_at=now, unfinished=0))
            if moved.rowcount != 1:
                state = self.run_state(run_id)  # UnknownRun if there is no such run
                raise errors.Conflict(f"run {run_id!r} is already {state}")
            running = conn.execute(select(attempts.c.celery_id).where(
                attempts.c.run_id == run_id, attempts.c.outcome == AttemptOutcome.RUNNING,
            )).scalars().all()
            conn.execute(update(attempts).where(
                attempts.c.run_id == run_id, attempts.c.outcome == AttemptOutcome.RUNNING,
            ).values(outcome=AttemptOutcome.FAILED, finished_at=now, error_type="Cancelled",
                     error_message=reason))
            conn.execute(update(ti).where(
                ti.c.run_id == run_id, ti.c.state.in_(UNFINISHED_TASK),
            ).values(state=TaskState.CANCELLED, finished_at=now, lease_expires_at=None,
                     error=reason))
        return [c for c in running if c]

    @staticmethod
    def _failed_leaves(conn: Connection, run_id: str, leaves: Collection[str]) -> int:
        n = 0
        for chunk in advance.chunks(list(leaves)):
            n += conn.execute(select(func.count()).select_from(ti).where(
                ti.c.run_id == run_id, ti.c.task_id.in_(chunk),
                ti.c.state.in_([TaskState.FAILED, TaskState.UPSTREAM_FAILED]))).scalar_one()
        return n

    # -- reads ---------------------------------------------------------------------------

    def run_state(self, run_id: str) -> RunState:
        with self._tx(write=False) as conn:
            state = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar()
        if state is None:
            raise errors.UnknownRun(f"no run {run_id!r}")
        return RunState(state)

    def progress(self, run_id: str) -> dict[TaskState, int]:
        with self._tx(write=False) as conn:
            rows = conn.execute(select(ti.c.state, func.count()).where(
                ti.c.run_id == run_id).group_by(ti.c.state)).all()
        return {TaskState(s): n for s, n in rows}

    def get_run(self, run_id: str, *, with_results: bool = True) -> records.Run:
        with self._tx(write=False) as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise errors.UnknownRun(f"no run {run_id!r}")
            cols = [c for c in ti.c if with_results or c.name not in ("result", "map_item")]
            tis = conn.execute(select(*cols).where(ti.c.run_id == run_id)).mappings().all()
            atts = conn.execute(select(attempts).where(attempts.c.run_id == run_id).order_by(
                attempts.c.task_id, attempts.c.attempt)).mappings().all()
        by_task: dict[str, list[records.Attempt]] = {}
        for a in atts:
            by_task.setdefault(a["task_id"], []).append(records.Attempt.model_validate(dict(a)))
        tasks = {t["task_id"]: records.TaskInstance.model_validate(
            {**t, "attempts": by_task.get(t["task_id"], [])}) for t in tis}
        return records.Run.model_validate({**row, "tasks": tasks})

    def list_runs(self, *, dag_id: str | None = None, state: str | None = None,
                  limit: int = 50) -> list[records.Run]:
        q = select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        if dag_id:
            q = q.where(runs.c.dag_id == dag_id)
        if state:
            q = q.where(runs.c.state == state)
        with self._tx(write=False) as conn:
            rows = conn.execute(q).mappings().all()
        return [records.Run.model_validate(dict(r)) for r in rows]

    def result(self, run_id: str, task_id: str) -> tuple[TaskState, Any]:
        with self._tx(write=False) as conn:
            row = conn.execute(select(ti.c.state, ti.c.result).where(
                ti.c.run_id == run_id, ti.c.task_id == task_id)).first()
            if row is None:
                exists = conn.execute(select(runs.c.id).where(runs.c.id == run_id)).scalar()
        if row is None:
            if exists is None:
                raise errors.UnknownRun(f"no run {run_id!r}")
            raise errors.UnknownTask(f"run {run_id!r} has no task {task_id!r}")
        return TaskState(row.state), row.result

    def count_rows(self) -> dict[str, int]:
        """Rows per table: lets tests prove a rejected request wrote nothing."""
        with self._tx(write=False) as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (runs, task_instances, attempts)}
