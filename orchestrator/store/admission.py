"""Pool admission: a task made ready takes its slots in the transaction that queues it, and
the transaction that frees slots starts the next waiters, with no loop in between.

A task that needs a slot (a named pool, a DAG with ``max_active_tasks``, or any task once
the default pool is bounded) is made ready as usual and then held back as ``waiting``;
:func:`fill` then admits waiters, highest priority first, then oldest, while they fit.
Usage is never a counter: it is summed from the rows that hold slots (queued, running,
up_for_retry), so a holder that dies gives its slots back with the transaction that
declares it lost, and nothing can leak.

Fills are serialized: PostgreSQL by a transaction-scoped advisory lock, SQLite by its
single writer. So two transactions freeing slots at once decide in turn, and never admit
one task too many."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from orchestrator.model import plan, spec
from orchestrator.store import sql_pools as sql
from orchestrator.store.results import Change

_LOCK_KEY = 0x6F726368  # "orch": the one advisory lock fills take on PostgreSQL
_SCAN = 1000
"""Waiters one fill looks at (and locks) per pool: skipped ones (their DAG at its cap,
more slots than the pool has) do not make it scan the whole queue; the coordinator's
pass fills again. A bounded pool looks at its free slots' worth, plus _SLACK."""
_SLACK = 50
_DEFAULT_TTL = 1.0

_bounded: dict[str, tuple[float, bool]] = {}
"""Engine URL -> (when read, whether the default pool is bounded): read at most once a
second per process, since every task of every DAG would otherwise pay that query."""


@dataclasses.dataclass(frozen=True)
class Admitted:
    run_id: str
    task_id: str
    attempt: int


def has_slot_columns(p: plan.Plan) -> bool:
    """Whether a task row of this DAG holds other than the columns' defaults (no pool,
    one slot, priority 0, no DAG cap): a 10,000-task DAG without them writes none."""
    return bool(p.slots or p.priority or p.map_over or p.max_active_tasks is not None)


def slot_columns(p: plan.Plan, task_id: str) -> dict[str, Any]:
    """A task row's slot columns (tables.task_instances), as this module reads them."""
    slot = p.slot(task_id)
    node, _ = spec.split_task_id(task_id)
    capped = p.max_active_tasks is not None and slot.slots > 0
    return {"pool": slot.pool, "pool_slots": slot.slots, "priority": p.priority.get(node, 0),
            "dag_limit": p.dag_id if capped else None,
            "dag_cap": p.max_active_tasks if capped else None}


def default_bounded(conn: Connection) -> bool:
    key = str(conn.engine.url)
    seen = _bounded.get(key)
    wall = time.monotonic()
    if seen is None or wall - seen[0] > _DEFAULT_TTL:
        slots = conn.execute(sql.POOL_SLOTS, {"b_pool": plan.DEFAULT_POOL}).scalar()
        seen = _bounded[key] = (wall, slots is not None)
    return seen[1]


def forget_default() -> None:
    """The default pool's bound changed in this process: read it again."""
    _bounded.clear()


def needed(conn: Connection, p: plan.Plan) -> bool:
    """Whether this DAG's tasks wait for slots at all: a DAG without named pools or
    ``max_active_tasks`` pays nothing while the default pool is unbounded."""
    return p.pooled or default_bounded(conn)


def settle(conn: Connection, run_id: str, p: plan.Plan, change: Change, now: dt.datetime,
           *, freed: Iterable[str] = ()) -> None:
    """After a transaction of ``run_id`` moved its tasks: hold back those it made ready
    that need a slot, and fill the pools its ``freed`` tasks gave slots back to (and
    those of the held tasks). Admitted tasks join ``change.queued`` or, of other runs,
    ``change.elsewhere``."""
    if not needed(conn, p):
        return
    ready, change.queued = change.queued, []
    touched: set[str | None] = set()
    free_default = p.max_active_tasks is None and not default_bounded(conn)
    for task_id, attempt in ready:
        slot = p.slot(task_id)
        if slot.slots == 0 or (slot.pool is None and free_default):
            # a mapped task's own row (its instances wait, not it), or a task of the
            # unbounded default pool in a DAG without a cap: nothing to wait for
            change.queued.append((task_id, attempt))
        elif conn.execute(sql.HOLD, {"b_run": run_id, "b_task": task_id,
                                     "b_now": now}).rowcount == 1:
            touched.add(slot.pool)
    freed = list(freed)
    for t in freed:
        slot = p.slot(t)
        # nobody waits in the unbounded default pool but for a DAG cap, filled below
        if slot.slots and not (slot.pool is None and free_default):
            touched.add(slot.pool)
    dags = {p.dag_id} if freed and p.max_active_tasks is not None else set()
    for a in fill(conn, touched, now, dags=dags):
        if a.run_id == run_id:
            change.queued.append((a.task_id, a.attempt))
        else:
            change.elsewhere.append((a.run_id, a.task_id, a.attempt))


def hold_and_fill(conn: Connection, tasks: Iterable[tuple[str, str]], now: dt.datetime,
                  ) -> list[Admitted]:
    """Tasks just queued with no plan at hand (sensors woken): they wait for their slots
    as their rows name them, and their pools are filled."""
    pools: set[str | None] = set()
    dags: set[str] = set()
    for run_id, task_id in tasks:
        key = {"b_run": run_id, "b_task": task_id, "b_now": now}
        row = conn.execute(sql.SLOT_OF, key).first()
        if row is not None and conn.execute(sql.HOLD, key).rowcount == 1:
            pools.add(row.pool)
            if row.dag_limit is not None:
                dags.add(row.dag_limit)
    return fill(conn, pools, now, dags=dags)


def release_row(conn: Connection, run_id: str, task_id: str, now: dt.datetime,
                ) -> list[Admitted]:
    """A task stopped holding its slot and no plan is at hand (a sensor going back to
    sleep): fill its pool, and its DAG's, as the row names them."""
    row = conn.execute(sql.SLOT_OF, {"b_run": run_id, "b_task": task_id}).first()
    if row is None or (row.pool is None and row.dag_limit is None
                       and not default_bounded(conn)):
        return []
    return fill(conn, {row.pool}, now, dags={row.dag_limit} - {None})


def fill(conn: Connection, pools: Collection[str | None], now: dt.datetime, *,
         dags: Collection[str] = ()) -> list[Admitted]:
    """Admit waiters of ``pools`` (None: the default pool), and of every pool the waiters
    of ``dags`` wait in, while they fit; returns them (now queued, to send).

    In a pool, admission is in order and stops at the first waiter that does not fit, so
    a big task is not starved by small ones behind it. A waiter whose DAG is at its
    ``max_active_tasks``, or that asks more slots than the pool has at all, is passed
    over (it cannot start whatever the others do)."""
    todo = set(pools)
    for dag in dags:
        todo.update(conn.execute(sql.POOLS_WAITING_FOR, {"b_dag": dag}).scalars())
    if not todo:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
    held_by_dag: dict[str, int] = {}
    out: list[Admitted] = []
    for pool in sorted(todo, key=lambda n: n or ""):
        out += _fill_pool(conn, pool, now, held_by_dag)
    return out


def _fill_pool(conn: Connection, pool: str | None, now: dt.datetime,
               held_by_dag: dict[str, int]) -> list[Admitted]:
    default = pool is None
    name = plan.DEFAULT_POOL if default else pool
    total = conn.execute(sql.POOL_SLOTS, {"b_pool": name}).scalar()  # None: unbounded
    scan = _SCAN
    held = 0
    if total is not None:
        held = conn.execute(sql.HELD[default], {"b_pool": pool}).scalar_one()
        if held >= total:
            return []  # full: nothing to look at (and no waiter rows locked)
        scan = min(_SCAN, total - held + _SLACK)
    out: list[Admitted] = []
    for w in conn.execute(sql.WAITERS[default], {"b_pool": pool, "b_limit": scan}).all():
        if total is not None and w.pool_slots > total:
            continue
        if w.dag_limit is not None:
            busy = held_by_dag.get(w.dag_limit)
            if busy is None:
                busy = conn.execute(sql.HELD_BY_DAG, {"b_dag": w.dag_limit}).scalar_one()
            held_by_dag[w.dag_limit] = busy
            if w.dag_cap is not None and busy >= w.dag_cap:
                continue
        if total is not None and held + w.pool_slots > total:
            break
        attempt = conn.execute(sql.ADMIT, {"b_run": w.run_id, "b_task": w.task_id,
                                           "b_now": now}).scalar()
        if attempt is None:
            continue
        held += w.pool_slots
        if w.dag_limit is not None:
            held_by_dag[w.dag_limit] += 1
        out.append(Admitted(w.run_id, w.task_id, attempt))
    return out


def fill_all(conn: Connection, now: dt.datetime) -> list[Admitted]:
    """Fill every pool that has waiters: the reconciler's safety net, for a slot freed by
    a process that did not know the default pool had become bounded."""
    return fill(conn, set(conn.execute(sql.POOLS_WITH_WAITERS).scalars()), now)
