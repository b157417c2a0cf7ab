"""A yearly DAG for the backfill tests: its tick (midnight, January 1st) is far from any
test's run, so a coordinator started on this folder fires none of it by itself."""

from __future__ import annotations

from _support import record

from orchestrator import context, dag, task


@task
def stamp() -> str:
    record()
    at = context().logical_time
    return at.isoformat() if at is not None else "none"


@dag(id="bf_yearly", schedule="0 0 1 1 *", catchup="none")
def bf_yearly() -> None:
    stamp()
