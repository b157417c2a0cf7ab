"""The statements of backfills, built once at import with bound ``b_*`` params."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select, update

from orchestrator.model.states import RunState
from orchestrator.store.tables import backfills, runs

_id = backfills.c.id == bindparam("b_id")
_active = runs.c.state.in_([RunState.RUNNING, RunState.QUEUED])
_now = bindparam("b_now", type_=backfills.c.created_at.type)

INSERT = insert(backfills)
LOCK = select(backfills).where(_id, backfills.c.state == "running").with_for_update()
"""The backfill's row, locked: two runs of it ending at once advance it in turn."""
ACTIVE = select(func.count()).select_from(runs).where(
    runs.c.backfill_id == bindparam("b_id"), _active)
ACTIVE_RUNS = select(runs.c.id).where(runs.c.backfill_id == bindparam("b_id"), _active)
RUN_AT = select(runs.c.id, runs.c.state, runs.c.dag_version).where(
    runs.c.dag_id == bindparam("b_dag"),
    runs.c.logical_time == bindparam("b_time", type_=runs.c.logical_time.type))
ADOPT = update(runs).where(runs.c.id == bindparam("b_run")).values(
    backfill_id=bindparam("b_id"))
MOVE = update(backfills).where(_id).values(
    cursor=bindparam("b_cursor", type_=backfills.c.cursor.type),
    created=bindparam("b_created"), state=bindparam("b_state"),
    finished_at=bindparam("b_finished", type_=backfills.c.finished_at.type))
CANCEL = update(backfills).where(_id, backfills.c.state == "running").values(
    state="cancelled", finished_at=_now)
ROW = select(backfills).where(_id)
LIST = select(backfills).order_by(backfills.c.created_at.desc(), backfills.c.id).limit(
    bindparam("b_limit"))
LIST_OF = LIST.where(backfills.c.dag_id == bindparam("b_dag"))
RUN_COUNTS = select(runs.c.backfill_id, runs.c.state, func.count().label("n")).where(
    runs.c.backfill_id.in_(bindparam("b_ids", expanding=True))).group_by(
    runs.c.backfill_id, runs.c.state)
