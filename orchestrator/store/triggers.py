"""Named events and asset events: stored, queued for every subscriber DAG and consumed by a
run in the same transaction, so no event is lost between a commit and a polling loop.

An event is consumed by a run or stays pending (its subscriber is paused, or there is
none yet): ``consume`` takes a DAG's pending events whenever it may run again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import params as params_
from orchestrator.model import schedule
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import runs
from orchestrator.store import sql_triggers as sql
from orchestrator.store.results import Change, RunStart

Resolve = Callable[[Connection, str], CompiledDag | None]
"""A stored DAG version, compiled (None when it is not stored)."""

_NAME = re.compile(schedule.ASSET_PATTERN)

CONSUME_LIMIT = 100
"""Events a subscriber takes over (from before it subscribed) in one call."""


@dataclasses.dataclass(frozen=True)
class EmitResult:
    event_id: str
    runs: list[str]
    """Runs the event started or queued (for a run slot)."""
    pending: int
    """Subscribers that left it pending (paused), or 1 when it has no subscriber."""
    started: list[str] = dataclasses.field(default_factory=list)
    """The runs among ``runs`` that are running: their first tasks are to send."""
    unsent: list[str] = dataclasses.field(default_factory=list)
    """Filled by the sender: the runs among ``started`` whose first tasks the broker did
    not take (marked unsent: the coordinator's next pass sends them)."""


def check(name: str, payload: Any, max_bytes: int | None) -> None:
    """A clear error for a bad event, before anything is written."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise errors.InvalidArgument(f"event name {name!r} must match "
                                     f"{schedule.ASSET_PATTERN}")
    problems = params_.problems_in(payload, "payload")
    if problems:
        raise errors.InvalidArgument("invalid event payload: " + "; ".join(problems[:10]))
    if max_bytes is not None:
        size = len(params_.canonical(payload))
        if size > max_bytes:
            raise errors.InvalidArgument(f"the event payload is {size} bytes as JSON, more "
                                         f"than ORCH_MAX_PARAMS_BYTES ({max_bytes})")


def emit(conn: Connection, kind: str, names: Sequence[str], payload: Any, *,
         resolve: Resolve, now: dt.datetime, change: Change,
         run_id: str | None = None, task_id: str | None = None) -> list[EmitResult]:
    """Store one event per name and hand each to its subscribers."""
    out = []
    for name in names:
        event_id = uuid.uuid4().hex
        conn.execute(sql.INSERT_EVENT, {"id": event_id, "kind": kind, "name": name,
                                        "payload": payload, "run_id": run_id,
                                        "task_id": task_id, "created_at": now})
        made: list[str] = []
        pending = 0
        subscribers = conn.execute(sql.SUBSCRIBERS, {"b_kind": kind,
                                                     "b_names": [name]}).scalars().all()
        for dag_id in subscribers:
            conn.execute(sql.INSERT_QUEUE, {"dag_id": dag_id, "event_id": event_id,
                                            "run_id": None, "consumed_at": None})
            created = consume(conn, dag_id, resolve=resolve, now=now, change=change)
            made += created
            if not created:
                pending += 1
        out.append(EmitResult(event_id, made, pending if subscribers else 1,
                              [r for r in made if r in change.started_runs]))
    return out


def consume(conn: Connection, dag_id: str, *, resolve: Resolve, now: dt.datetime,
            change: Change, adopt: bool = False) -> list[str]:
    """Start (or queue, for a run slot) the runs ``dag_id``'s pending events call for;
    nothing while it is paused. ``adopt``: first take over the events of its triggers
    that had no subscriber. Returns the runs created; running ones go to the change."""
    row = conn.execute(sql.LOCK_DAG, {"b_dag": dag_id}).first()
    if row is None or row.paused or row.version is None:
        return []
    dag = resolve(conn, row.version)
    if dag is None:
        return []
    try:
        wanted = schedule.parse(dag.spec.schedule, dag.spec.timezone)
        values = params_.validate(dag.spec, None)
    except errors.OrchestratorError:
        return []
    if not isinstance(wanted, schedule.OnEvent | schedule.OnAssets):
        return []
    kind, names = (("event", (wanted.name,)) if isinstance(wanted, schedule.OnEvent)
                   else ("asset", wanted.names))
    if adopt:
        for event_id in conn.execute(sql.ORPHANS, {"b_kind": kind, "b_names": list(names),
                                                   "b_limit": CONSUME_LIMIT}).scalars():
            conn.execute(sql.INSERT_QUEUE, {"dag_id": dag_id, "event_id": event_id,
                                            "run_id": None, "consumed_at": None})
    batches = _batches(conn, dag_id, wanted, kind, names)
    if not batches:
        return []
    active = None
    if row.max_active_runs is not None:
        active = conn.execute(sql.ACTIVE_RUNS, {"b_dag": dag_id}).scalar_one()
    made = []
    for batch in batches:
        if kind == "event":
            e = batch[0]
            payload: Any = {"event": e.name, "id": e.id, "payload": e.payload}
        else:
            payload = {"assets": [{"name": e.name, "id": e.id, "run_id": e.run_id,
                                   "task_id": e.task_id,
                                   "created_at": e.created_at.isoformat()} for e in batch]}
        queued = active is not None and active >= row.max_active_runs
        new_id = uuid.uuid4().hex
        runs.create(conn, dag, run_id=new_id, params=values, idempotency_key=None,
                    version_stored=True, now=now, change=change,
                    start=RunStart(trigger=kind, payload=payload, queued=queued))
        conn.execute(sql.CONSUME, {"b_dag": dag_id, "b_ids": [e.id for e in batch],
                                   "b_run": new_id, "b_now": now})
        if active is not None:
            active += 1
        if not queued:
            change.started_runs.append(new_id)
        made.append(new_id)
    return made


def _batches(conn: Connection, dag_id: str, wanted: schedule.OnEvent | schedule.OnAssets,
             kind: str, names: tuple[str, ...]) -> list[list[Any]]:
    """The pending events each new run consumes: one each, or (``all``) every pending
    one once each asset has one."""
    pending = [r for r in conn.execute(sql.PENDING_OF, {"b_dag": dag_id})
               if r.kind == kind and r.name in names]
    if isinstance(wanted, schedule.OnAssets) and wanted.when == "all":
        return [pending] if set(names) <= {r.name for r in pending} else []
    return [[r] for r in pending]
