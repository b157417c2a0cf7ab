"""The statements of pools management, built once at import with bound ``b_*`` params."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.model.states import HOLDS_SLOT, TaskState
from orchestrator.store.tables import pools, task_instances

_ti = task_instances
_COUNTED = sorted({*HOLDS_SLOT, TaskState.WAITING})

POOL_ROWS = select(pools.c.name, pools.c.slots, pools.c.description).order_by(pools.c.name)
POOL_ROW = select(pools.c.name, pools.c.slots, pools.c.description).where(
    pools.c.name == bindparam("b_name"))

# Usage is the slots of the rows that hold one, never a counter (see tables.pools).
USAGE = (select(_ti.c.pool, _ti.c.state, func.count().label("tasks"),
                func.coalesce(func.sum(_ti.c.pool_slots), 0).label("slots"))
         .where(_ti.c.pool.isnot(None), _ti.c.state.in_(_COUNTED))
         .group_by(_ti.c.pool, _ti.c.state))
USAGE_OF = USAGE.where(_ti.c.pool == bindparam("b_name"))

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
