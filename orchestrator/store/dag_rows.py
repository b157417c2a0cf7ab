"""DAG rows as the surfaces see them: pause state and schedule (the scheduler's rows)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from orchestrator.model import records
from orchestrator.store import sql_dags as sql


def set_paused(conn: Connection, dag_id: str, paused: bool, now: dt.datetime) -> None:
    conn.execute(sql.SET_PAUSED[conn.dialect.name],
                 {"b_dag": dag_id, "b_paused": paused, "b_now": now})


def is_paused(conn: Connection, dag_id: str) -> bool:
    return bool(conn.execute(sql.IS_PAUSED, {"b_dag": dag_id}).scalar())


def _human(value: Any) -> str | None:
    # The scheduler stores the spec's value: an expression, or {event: ...}/{assets: ...}.
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "event" in value:
        return f"event {value['event']}"
    if isinstance(value, dict) and "assets" in value:
        names = ", ".join(str(n) for n in value["assets"])
        return f"assets ({value.get('when', 'any')}) {names}"
    return json.dumps(value, sort_keys=True)


def states(conn: Connection, dag_ids: Sequence[str] | None) -> list[records.DagState]:
    rows = (conn.execute(sql.ALL_STATES) if dag_ids is None
            else conn.execute(sql.STATES_OF, {"b_dags": list(dag_ids)}))
    out = []
    for r in rows:
        d = r.schedule or {}
        out.append(records.DagState(
            dag_id=r.dag_id, paused=bool(r.paused), schedule=_human(d.get("value")),
            timezone=d.get("timezone"), catchup=d.get("catchup"), next_fire=r.next_fire,
            last_fire=r.last_fire, skipped=r.skipped or 0,
            max_active_runs=r.max_active_runs))
    return out
