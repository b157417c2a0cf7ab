"""What callers ask of a run: submit, cancel, rerun (the client now, the API later).

Every check comes before the first write, so a rejected command changes nothing: bad
params, a timeout above the cap, an unreachable broker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator import errors
from orchestrator.control.outcomes import Outcomes
from orchestrator.model import params as params_
from orchestrator.model import rerun as rerun_
from orchestrator.model import schedule, sealed
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.store import Change, RunStart
from orchestrator.transport import dispatch


@dataclasses.dataclass(frozen=True)
class Submission:
    run_id: str
    created: bool
    """False: the idempotency key named a run that already existed (nothing new)."""
    sent: bool
    """False: the run is accepted, but the broker refused its first messages; the
    coordinator sends them as soon as the broker is back."""


class Commands:
    def __init__(self, settings: Settings, outcomes: Outcomes) -> None:
        self.settings = settings
        self.outcomes = outcomes
        self.store = outcomes.store

    def submit(self, dag: CompiledDag, params: Mapping[str, Any] | None = None, *,
               idempotency_key: str | None = None,
               logical_time: dt.datetime | None = None) -> Submission:
        """Start a run of ``dag``. Checked first, written once, then sent. A
        ``logical_time`` (naive: UTC) is the run's, unique per DAG: a second run at the
        same one is a Conflict naming the first; its data interval is the schedule's
        when the DAG is timed, else ``[logical_time, logical_time]``."""
        values = params_.validate(dag.spec, params,
                                  max_bytes=self.settings.limits.max_params_bytes)
        # Sealed before anything is written (refused without ORCH_SIGNING_KEY).
        values = sealed.seal_params(dag.spec, values, self.settings.security.signing_key)
        if idempotency_key is not None:
            params_.check_key(idempotency_key)
        self._check_limits(dag)
        if self.store.is_paused(dag.id):
            raise errors.DagPaused(f"DAG {dag.id!r} is paused: unpause it to start runs "
                                   f"(orchestrator dags unpause {dag.id})")
        dispatcher = self.outcomes.dispatcher
        if not dispatcher.reachable():
            raise errors.TransportError(
                f"cannot reach the broker at {dispatch.safe_url(self.settings.broker.url)}: "
                "nothing was submitted (is `orchestrator up` running?)")
        new = self.store.create_run(dag, run_id=uuid.uuid4().hex, params=values,
                                    idempotency_key=idempotency_key,
                                    start=_manual_start(dag, logical_time))
        if not new.created:
            return Submission(new.run_id, created=False, sent=True)
        roots = [(r, 1) for r in dag.plan.initial] if new.queued is None else list(new.queued)
        self.outcomes.run_started(dag, new.run_id, roots)
        if new.elsewhere:  # waiters of other runs its fill admitted: marked unsent if lost
            with contextlib.suppress(errors.TransportError):
                self.outcomes.apply(dag, Change(new.run_id, elsewhere=list(new.elsewhere)))
        try:
            self.outcomes.send(dag, new.run_id, roots)
        except errors.TransportError:
            return Submission(new.run_id, created=True, sent=False)
        return Submission(new.run_id, created=True, sent=True)

    def _check_limits(self, dag: CompiledDag) -> None:
        cap = self.settings.worker.task_timeout_max
        for t in dag.spec.tasks:
            if t.timeout is not None and t.timeout > cap:
                raise errors.DagError(f"task {t.id!r}: timeout {t.timeout} s is above "
                                      f"ORCH_TASK_TIMEOUT_MAX ({cap} s)", dag_id=dag.id)
        named = {s.pool for s in dag.plan.slots.values()} - {None}
        if named:
            known = {p.name for p in self.store.pools()}
            for t in dag.spec.tasks:
                if t.pool in named - known:
                    raise errors.UnknownPool(
                        f"task {t.id!r} of DAG {dag.id!r} takes slots of pool {t.pool!r}, "
                        f"which does not exist: create it first (orchestrator pools set "
                        f"{t.pool} --slots N)")

    def cancel(self, run_id: str) -> None:
        """Cancel a running run: queued tasks never start, running ones are terminated,
        and the run ends ``cancelled``. Raises :class:`Conflict` if it already ended."""
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        dag = self.outcomes.dag_of(self.store.header(run_id))
        self.outcomes.apply(dag, self.store.cancel(run_id))

    def rerun(self, run_id: str, *, from_task: str | None = None) -> list[str]:
        """Continue a finished run from its stored DAG version: rerun its failed and
        upstream_failed tasks (or ``from_task`` and everything downstream of it), keeping
        every other result. Returns the task ids reset, in dependency order."""
        self.outcomes.dispatcher  # noqa: B018 -- no signing key: refuse before writing
        run = self.store.get_run(run_id, with_results=False)
        if not run.finished:
            raise errors.Conflict(f"run {run_id!r} is still running: wait for it first")
        dag = self.outcomes.dag_of(self.store.header(run_id))
        state = {t: ti.state for t, ti in run.tasks.items() if ti.map_parent is None}
        if set(state) != {t.id for t in dag.spec.tasks}:
            raise errors.Conflict(f"DAG {dag.id!r} has changed since run {run_id!r}: "
                                  "its tasks differ, so it cannot be continued")
        p = dag.plan
        chosen = rerun_.targets(p, state, from_task)
        if not chosen:
            raise errors.Conflict(f"run {run_id!r} has no failed task to rerun; name a task "
                                  "to rerun from (--from TASK)")
        reset = rerun_.plan_reset(p, state, chosen)
        # From failure, a mapped task keeps its instances that succeeded; from a named
        # task, every instance of the mapped tasks reset runs again.
        redo = [t for t in reset if t in p.map_over] if from_task is not None else []
        done = self.store.rerun(run_id, reset, {t: dag.spec.task(t).max_attempts for t in reset},
                                leaves=[t for t in p.order if not p.downstream[t]],
                                redo_instances=redo, p=p)
        self.outcomes.run_started(dag, run_id, [])
        self.outcomes.apply(dag, done.change)
        return list(reset)


def _manual_start(dag: CompiledDag, logical_time: dt.datetime | None) -> RunStart | None:
    if logical_time is None:
        return None
    t = (logical_time.replace(tzinfo=dt.UTC) if logical_time.tzinfo is None
         else logical_time.astimezone(dt.UTC))
    s = schedule.parse(dag.spec.schedule, dag.spec.timezone)
    start, end = (schedule.interval(s, t) if isinstance(s, schedule.Cron | schedule.Every)
                  else (t, t))
    return RunStart(trigger="manual", logical_time=t, interval_start=start, interval_end=end)
