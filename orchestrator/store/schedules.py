"""The scheduler's writes: register the DAGs of a folder, and fire what is due.

A DAG's row holds its schedule as the spec gives it, so the next fire is a function of
the rows (and now) alone: any coordinator can fire any DAG, with or without the folder.
Firing advances ``next_fire`` with a compare-and-set and inserts the runs in the same
transaction, and runs are unique on (dag_id, logical_time): of several coordinators
firing one tick, one creates its run and the others change nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import firing, schedule
from orchestrator.model import params as params_
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.spec import DagSpec
from orchestrator.store import runs
from orchestrator.store import sql_schedules as sql
from orchestrator.store.results import RunStart

_IN_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class Fired:
    """A run a schedule created: ``queued`` waits for a run slot (nothing to send yet)."""

    run_id: str
    dag_id: str
    version: str
    logical_time: dt.datetime
    queued: bool


def definition(spec: DagSpec) -> dict[str, Any] | None:
    """What firing needs of the DAG, stored in its row (None: not scheduled)."""
    if spec.schedule is None:
        return None
    return {"value": spec.schedule, "timezone": spec.timezone, "catchup": spec.catchup,
            "max_catchup": spec.max_catchup, "overlap": spec.overlap,
            "max_active_runs": spec.max_active_runs}


def key_of(spec: DagSpec) -> str | None:
    """Changes when the ticks change (expression, zone); catchup or overlap do not move
    the next fire."""
    if spec.schedule is None:
        return None
    body = json.dumps({"value": spec.schedule, "timezone": spec.timezone}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _triggers(s: schedule.Schedule | None) -> set[tuple[str, str]]:
    if isinstance(s, schedule.OnEvent):
        return {("event", s.name)}
    if isinstance(s, schedule.OnAssets):
        return {("asset", n) for n in s.names}
    return set()


def register(conn: Connection, dag: CompiledDag, now: dt.datetime, *,
             version_stored: bool) -> bool:
    """Upsert the DAG's row (and its version); True if it wrote (new or changed)."""
    spec = dag.spec
    s = schedule.parse(spec.schedule, spec.timezone)
    if not version_stored:
        runs.put_version(conn, dag, now)
    row = conn.execute(sql.UPSERT_DAG[conn.dialect.name], {
        "dag_id": dag.id, "version": dag.version, "paused": False,
        "schedule": definition(spec), "schedule_key": key_of(spec),
        "next_fire": schedule.next_tick(s, now) if isinstance(
            s, schedule.Cron | schedule.Every) else None,
        "skipped": 0, "max_active_runs": spec.max_active_runs,
        "max_active_tasks": spec.max_active_tasks, "updated_at": now}).first()
    if row is None:
        return False
    wanted = _triggers(s)
    have = {(r.kind, r.name) for r in conn.execute(sql.TRIGGERS_OF, {"b_dag": dag.id})}
    for kind, name in sorted(have - wanted):
        conn.execute(sql.DELETE_TRIGGER, {"b_dag": dag.id, "b_kind": kind, "b_name": name})
    if wanted - have:
        conn.execute(sql.INSERT_TRIGGER[conn.dialect.name],
                     [{"dag_id": dag.id, "kind": k, "name": n}
                      for k, n in sorted(wanted - have)])
    return True


def due(conn: Connection, now: dt.datetime, limit: int) -> list[tuple[str, str | None]]:
    """(dag_id, version) of the unpaused DAGs whose next fire has come, earliest first."""
    return [(r.dag_id, r.version) for r in conn.execute(sql.DUE, {"b_now": now,
                                                                  "b_limit": limit})]


def fire(conn: Connection, dag_id: str, now: dt.datetime, *, grace: float,
         compiled: Callable[[str], CompiledDag], created_at: dt.datetime) -> list[Fired]:
    """Fire one DAG's due ticks (by its catchup and overlap policies) and move its next
    fire past ``now``. Nothing, if another coordinator holds or already moved the row."""
    row = conn.execute(sql.LOCK_DUE, {"b_dag": dag_id, "b_now": now}).first()
    if row is None or row.schedule is None or row.version is None:
        return []
    d = row.schedule
    s = schedule.parse(d["value"], d["timezone"])
    if not isinstance(s, schedule.Cron | schedule.Every):
        return []
    chosen, skipped = firing.due_ticks(s, row.next_fire, now, catchup=d["catchup"],
                                       max_catchup=d["max_catchup"], grace=grace)
    chosen = _not_created(conn, dag_id, chosen)
    queued = [False] * len(chosen)
    limit = row.max_active_runs
    if limit is not None and chosen:
        free = max(0, limit - conn.execute(sql.ACTIVE_RUNS, {"b_dag": dag_id}).scalar_one())
        if d["overlap"] == "queue":
            queued = [i >= free for i in range(len(chosen))]
        else:
            skipped += max(0, len(chosen) - free)
            chosen, queued = chosen[:free], queued[:free]
    if conn.execute(sql.ADVANCE, {
            "b_dag": dag_id, "b_old": row.next_fire, "b_new": schedule.next_tick(s, now),
            "b_last": chosen[-1] if chosen else None, "b_skipped": skipped}).rowcount != 1:
        return []
    if not chosen:
        return []
    dag = compiled(row.version)
    values = params_.validate(dag.spec, {})
    out: list[Fired] = []
    for tick, waits in zip(chosen, queued, strict=True):
        start, end = schedule.interval(s, tick)
        run_id = uuid.uuid4().hex
        runs.create(conn, dag, run_id=run_id, params=values, idempotency_key=None,
                    version_stored=True, now=created_at,
                    start=RunStart(trigger="schedule", logical_time=tick,
                                   interval_start=start, interval_end=end, queued=waits))
        out.append(Fired(run_id, dag_id, dag.version, tick, waits))
    return out


def _not_created(conn: Connection, dag_id: str,
                 ticks: list[dt.datetime]) -> list[dt.datetime]:
    """Leave out ticks that have a run already (a manual run given that logical time)."""
    taken: set[dt.datetime] = set()
    for i in range(0, len(ticks), _IN_CHUNK):
        taken.update(conn.execute(sql.EXISTING_TICKS, {
            "b_dag": dag_id, "b_ticks": ticks[i:i + _IN_CHUNK]}).scalars())
    return [t for t in ticks if t not in taken] if taken else ticks


def refuse_duplicate(conn: Connection, dag_id: str, logical_time: dt.datetime) -> None:
    """Raise Conflict naming the run that has this logical time already, if one does."""
    existing = conn.execute(sql.RUN_AT, {"b_dag": dag_id, "b_time": logical_time}).scalar()
    if existing is not None:
        raise errors.Conflict(f"DAG {dag_id!r} already has a run at logical time "
                              f"{logical_time.isoformat()}: run {existing}")
