"""The statements of DAG pause state and schedule listing, built once at import."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.store.tables import dags


def _set_paused(dialect: Any) -> Any:
    # Insert-or-update: a DAG can be paused before any coordinator registered it, and
    # register_dags leaves ``paused`` alone on conflict.
    ins = dialect.insert(dags).values(dag_id=bindparam("b_dag"), paused=bindparam("b_paused"),
                                      skipped=0, updated_at=bindparam("b_now"))
    return ins.on_conflict_do_update(
        index_elements=[dags.c.dag_id],
        set_={"paused": ins.excluded.paused, "updated_at": ins.excluded.updated_at})


SET_PAUSED = {"sqlite": _set_paused(sqlite), "postgresql": _set_paused(postgresql)}
IS_PAUSED = select(dags.c.paused).where(dags.c.dag_id == bindparam("b_dag"))
_cols = (dags.c.dag_id, dags.c.paused, dags.c.schedule, dags.c.next_fire, dags.c.last_fire,
         dags.c.skipped, dags.c.max_active_runs)
ALL_STATES = select(*_cols).order_by(dags.c.dag_id)
STATES_OF = select(*_cols).where(
    dags.c.dag_id.in_(bindparam("b_dags", expanding=True))).order_by(dags.c.dag_id)
