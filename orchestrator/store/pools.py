"""Pools management: define, list and delete named slot pools (one Connection each).

Usage is read from the task rows that hold a slot, never kept as a counter, so what a
listing shows cannot drift from what the tasks hold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import records
from orchestrator.model.plan import DEFAULT_POOL
from orchestrator.model.states import HOLDS_SLOT, TaskState
from orchestrator.store import sql_pools as sql

DEFAULT = DEFAULT_POOL
NAME_MAX = 100
SLOTS_MAX = 1_000_000


def check(name: str, slots: int | None, description: str | None) -> None:
    """Bad input is refused before anything is written."""
    if not (0 < len(name) <= NAME_MAX) or not name.isprintable() or name != name.strip() \
            or "/" in name:
        raise errors.InvalidArgument(
            f"a pool name is 1 to {NAME_MAX} printable characters, without '/' or "
            f"surrounding spaces: {name[:NAME_MAX]!r}")
    if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int)
                              or not 0 <= slots <= SLOTS_MAX):
        raise errors.InvalidArgument(f"pool slots are a whole number from 0 to {SLOTS_MAX} "
                                     f"(or none: unbounded), not {slots!r}")
    if description is not None and (len(description) > 1000 or "\x00" in description):
        raise errors.InvalidArgument("a pool description is at most 1000 characters, "
                                     "without NUL")


def set_pool(conn: Connection, name: str, slots: int | None, description: str | None,
             now: dt.datetime) -> records.Pool:
    """Create or resize a pool (``description`` None keeps the one it has)."""
    check(name, slots, description)
    params = {"b_name": name, "b_slots": slots, "b_now": now}
    if description is None and conn.execute(sql.KEEP_DESCRIPTION, params).rowcount == 1:
        return get(conn, name)
    conn.execute(sql.UPSERT[conn.dialect.name],
                 {**params, "b_description": description or ""})
    return get(conn, name)


def get(conn: Connection, name: str) -> records.Pool:
    row = conn.execute(sql.POOL_ROW, {"b_name": name}).first()
    if row is None:
        raise errors.UnknownPool(f"no pool {name!r}")
    return _pool(row.name, row.slots, row.description,
                 conn.execute(sql.USAGE_OF[name == DEFAULT], {"b_name": name}).all())


def listing(conn: Connection) -> list[records.Pool]:
    usage: dict[str, list[Any]] = {}
    for u in conn.execute(sql.USAGE).all():
        usage.setdefault(u.pool, []).append(u)
    return [_pool(r.name, r.slots, r.description, usage.get(r.name, []))
            for r in conn.execute(sql.POOL_ROWS).all()]


def delete_pool(conn: Connection, name: str) -> None:
    """Delete a pool no task holds or waits on; the default pool is never deleted."""
    if name == DEFAULT:
        raise errors.Conflict("the default pool cannot be deleted (set its slots instead)")
    found = get(conn, name)
    if found.used or found.queued or found.running or found.waiting:
        raise errors.Conflict(
            f"pool {name!r} has tasks holding or waiting for its slots "
            f"({found.queued} queued, {found.running} running, {found.waiting} waiting): "
            "wait for them or cancel their runs first")
    conn.execute(sql.DELETE_POOL, {"b_name": name})


def _pool(name: str, slots: int | None, description: str | None,
          usage: Sequence[Any]) -> records.Pool:
    used = queued = running = waiting = 0
    for u in usage:
        state, tasks, held = u.state, u.tasks, u.slots
        if state in HOLDS_SLOT:
            used += int(held)
        if state == TaskState.QUEUED:
            queued += int(tasks)
        elif state in (TaskState.RUNNING, TaskState.UP_FOR_RETRY):
            running += int(tasks)
        elif state == TaskState.WAITING:
            waiting += int(tasks)
    return records.Pool(name=name, slots=slots, used=used, queued=queued, running=running,
                        waiting=waiting, description=description or "")
