"""The scheduler's statements (registering DAGs, firing their schedules, run slots), built
once at import with bound parameters ``b_*`` like every statement of the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, case, delete, false, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.model.states import RunState, TaskState
from orchestrator.store.tables import dag_triggers, dags, runs, task_instances

ti = task_instances
_dag = dags.c.dag_id == bindparam("b_dag")
_now = bindparam("b_now", type_=dags.c.next_fire.type)

# -- register -------------------------------------------------------------------------------


def _upsert(dialect: Any) -> Any:
    """Insert the DAG's row, or bring it up to date when its version or schedule changed:
    an unchanged schedule keeps its next fire, a changed one starts from the new row's.
    Returns the row only when it wrote, so an unchanged DAG costs one statement."""
    ins = dialect.insert(dags)
    new = ins.excluded
    same = dags.c.schedule_key.is_not_distinct_from(new.schedule_key)
    return ins.on_conflict_do_update(
        index_elements=[dags.c.dag_id],
        set_={"version": new.version, "schedule": new.schedule,
              "schedule_key": new.schedule_key,
              "next_fire": case((same, dags.c.next_fire), else_=new.next_fire),
              "max_active_runs": new.max_active_runs,
              "max_active_tasks": new.max_active_tasks, "updated_at": new.updated_at},
        where=or_(dags.c.version.is_distinct_from(new.version), ~same),
    ).returning(dags.c.dag_id)


UPSERT_DAG = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}

TRIGGERS_OF = select(dag_triggers.c.kind, dag_triggers.c.name).where(
    dag_triggers.c.dag_id == bindparam("b_dag"))
DELETE_TRIGGER = delete(dag_triggers).where(
    dag_triggers.c.dag_id == bindparam("b_dag"), dag_triggers.c.kind == bindparam("b_kind"),
    dag_triggers.c.name == bindparam("b_name"))
INSERT_TRIGGER = {
    "sqlite": sqlite.insert(dag_triggers).on_conflict_do_nothing(),
    "postgresql": postgresql.insert(dag_triggers).on_conflict_do_nothing(),
}

# -- fire -----------------------------------------------------------------------------------

_due = (dags.c.next_fire <= _now, dags.c.paused == false())

DUE = select(dags.c.dag_id, dags.c.version).where(*_due).order_by(
    dags.c.next_fire).limit(bindparam("b_limit"))

LOCK_DUE = select(dags.c.version, dags.c.schedule, dags.c.next_fire,
                  dags.c.max_active_runs).where(_dag, *_due).with_for_update(skip_locked=True)
"""The due row, locked: another coordinator's pass skips it (SQLite renders no lock; its
one writer at a time does the same)."""

ACTIVE_RUNS = select(func.count()).select_from(runs).where(
    runs.c.dag_id == bindparam("b_dag"), runs.c.state.in_([RunState.RUNNING, RunState.QUEUED]))

EXISTING_TICKS = select(runs.c.logical_time).where(
    runs.c.dag_id == bindparam("b_dag"),
    runs.c.logical_time.in_(bindparam("b_ticks", expanding=True,
                                      type_=runs.c.logical_time.type)))

ADVANCE = update(dags).where(
    _dag, dags.c.next_fire == bindparam("b_old", type_=dags.c.next_fire.type)).values(
    next_fire=bindparam("b_new", type_=dags.c.next_fire.type),
    last_fire=func.coalesce(bindparam("b_last", type_=dags.c.last_fire.type),
                            dags.c.last_fire),
    skipped=dags.c.skipped + bindparam("b_skipped"))
"""Compare-and-set: of two coordinators firing the same tick, one moves it on."""

# -- run slots ------------------------------------------------------------------------------

SLOT_LIMIT = select(dags.c.max_active_runs).where(_dag).with_for_update()
"""Locks the DAG's row (PostgreSQL): two runs ending at once decide their slots in turn."""

RUNNING_RUNS = select(func.count()).select_from(runs).where(
    runs.c.dag_id == bindparam("b_dag"), runs.c.state == RunState.RUNNING)

OLDEST_QUEUED = select(runs.c.id, runs.c.dag_version, runs.c.logical_time).where(
    runs.c.dag_id == bindparam("b_dag"), runs.c.state == RunState.QUEUED).order_by(
    runs.c.logical_time.is_(None), runs.c.logical_time, runs.c.created_at).limit(1)
"""Logical time first (a run without one last), then age."""

START_RUN = update(runs).where(runs.c.id == bindparam("b_run"),
                               runs.c.state == RunState.QUEUED).values(
    state=RunState.RUNNING, deadline=bindparam("b_deadline", type_=runs.c.deadline.type))
"""Its timeout counts from now: waiting for a slot is not running."""

QUEUE_INITIAL = update(ti).where(
    ti.c.run_id == bindparam("b_run"), ti.c.task_id.in_(bindparam("b_ids", expanding=True)),
    ti.c.state == TaskState.PENDING).values(
    state=TaskState.QUEUED, queued_at=bindparam("b_now", type_=ti.c.queued_at.type))

RUN_AT = select(runs.c.id).where(
    runs.c.dag_id == bindparam("b_dag"),
    runs.c.logical_time == bindparam("b_time", type_=runs.c.logical_time.type))
