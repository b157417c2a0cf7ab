"""DAGs of the event-ordering, unpause and CLI event tests (tasks read their event through
context().payload), and the function the YAML context-argument DAGs call."""

from __future__ import annotations

import datetime as dt
from typing import Any

from _support import record

from orchestrator import context, dag, task


def describe(when: dt.datetime | None, start: dt.datetime | None, end: dt.datetime | None,
             payload: Any, run_id: str, dag_id: str) -> dict[str, Any]:
    """What the YAML DAGs' {context: ...} arguments gave, as JSON (a result must be)."""
    record()
    iso = [None if t is None else t.isoformat() for t in (when, start, end)]
    same = context()
    return {"logical_time": iso[0], "interval_start": iso[1], "interval_end": iso[2],
            "payload": payload, "run_id": run_id, "dag_id": dag_id,
            # what context() says in the same call: an argument must never disagree with it
            "agrees": (when, start, end, payload, run_id, dag_id)
            == (same.logical_time, same.interval_start, same.interval_end, same.payload,
                same.run_id, same.dag_id)}


@task
def seen() -> Any:
    record()
    ctx = context()
    return {"trigger": ctx.trigger, "event": ctx.payload["event"],
            "payload": ctx.payload["payload"]}


@dag(id="tev_serial", schedule={"event": "tev-serial"}, max_active_runs=1)
def tev_serial() -> None:
    seen()


@dag(id="tev_held", schedule={"event": "tev-held"})
def tev_held() -> None:
    seen()


@dag(id="tev_cli", schedule={"event": "tev-cli"})
def tev_cli() -> None:
    seen()
