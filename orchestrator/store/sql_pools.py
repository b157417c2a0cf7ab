"""The statements of pools management, built once at import with bound ``b_*`` params."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.model.plan import DEFAULT_POOL
from orchestrator.model.states import HOLDS_SLOT, TaskState
from orchestrator.store.tables import pools, task_instances

_ti = task_instances
_COUNTED = sorted({*HOLDS_SLOT, TaskState.WAITING})

POOL_ROWS = select(pools.c.name, pools.c.slots, pools.c.description).order_by(pools.c.name)
POOL_ROW = select(pools.c.name, pools.c.slots, pools.c.description).where(
    pools.c.name == bindparam("b_name"))

# Usage is the slots of the rows that hold one, never a counter (see tables.pools). A
# row without a pool takes the default pool's.
_pool_name = func.coalesce(_ti.c.pool, DEFAULT_POOL)
USAGE = (select(_pool_name.label("pool"), _ti.c.state, func.count().label("tasks"),
                func.coalesce(func.sum(_ti.c.pool_slots), 0).label("slots"))
         .where(_ti.c.state.in_(_COUNTED))
         .group_by(_pool_name, _ti.c.state))
USAGE_OF = {True: USAGE.where(_ti.c.pool.is_(None)),
            False: USAGE.where(_ti.c.pool == bindparam("b_name"))}
"""By whether the pool is the default one."""

# -- admission (store.admission) -----------------------------------------------------------

_now = bindparam("b_now", type_=_ti.c.queued_at.type)
_holds = _ti.c.state.in_(sorted(HOLDS_SLOT))
_waits = _ti.c.state == TaskState.WAITING
_in_pool = {True: _ti.c.pool.is_(None), False: _ti.c.pool == bindparam("b_pool")}
_this = (_ti.c.run_id == bindparam("b_run"), _ti.c.task_id == bindparam("b_task"))

POOL_SLOTS = select(pools.c.slots).where(pools.c.name == bindparam("b_pool"))
HELD = {default: select(func.coalesce(func.sum(_ti.c.pool_slots), 0)).where(cond, _holds)
        for default, cond in _in_pool.items()}
HELD_BY_DAG = select(func.count()).where(_ti.c.dag_limit == bindparam("b_dag"), _holds)
WAITERS = {default: select(_ti.c.run_id, _ti.c.task_id, _ti.c.attempt, _ti.c.pool_slots,
                           _ti.c.dag_limit, _ti.c.dag_cap)
           .where(cond, _waits)
           .order_by(_ti.c.priority.desc(), _ti.c.ready_at, _ti.c.run_id, _ti.c.task_id)
           .limit(bindparam("b_limit"))
           # a waiter another transaction is changing (cancelling, admitting) is its to
           # decide: taking its lock here could deadlock with that one
           .with_for_update(skip_locked=True)
           for default, cond in _in_pool.items()}
"""Waiters of a pool in the order they are admitted: higher priority, then oldest."""
POOLS_WAITING_FOR = select(_ti.c.pool).where(
    _waits, _ti.c.dag_limit == bindparam("b_dag")).distinct()
POOLS_WITH_WAITERS = select(_ti.c.pool).where(_waits).distinct()

HOLD = update(_ti).where(*_this, _ti.c.state == TaskState.QUEUED).values(
    state=TaskState.WAITING, queued_at=None, ready_at=_now)
"""A task made ready waits for its slot (from then: its age among waiters)."""
ADMIT = update(_ti).where(*_this, _waits).values(
    state=TaskState.QUEUED, queued_at=_now, unsent=False).returning(_ti.c.attempt)
SLOT_OF = select(_ti.c.pool, _ti.c.dag_limit).where(*_this)

_values: dict[str, Any] = {"name": bindparam("b_name"), "slots": bindparam("b_slots"),
           "description": bindparam("b_description"), "updated_at": bindparam("b_now")}
_set: dict[str, Any] = {"slots": bindparam("b_slots"), "description": bindparam("b_description"),
        "updated_at": bindparam("b_now")}
UPSERT = {
    "postgresql": postgresql.insert(pools).values(**_values).on_conflict_do_update(
        index_elements=["name"], set_=_set),
    "sqlite": sqlite.insert(pools).values(**_values).on_conflict_do_update(
        index_elements=["name"], set_=_set),
}
KEEP_DESCRIPTION = update(pools).where(pools.c.name == bindparam("b_name")).values(
    slots=bindparam("b_slots"), updated_at=bindparam("b_now"))
DELETE_POOL = delete(pools).where(pools.c.name == bindparam("b_name"))
