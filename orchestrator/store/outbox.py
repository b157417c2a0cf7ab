"""The alerts outbox: notification rows written by the transaction that caused them, and
delivered later by any coordinator under a lease.

Nothing here sends. A state change that alerts someone (a run or task failing, a retry,
a deadline missed, a callback due) writes one row per rule or callback it concerns, in
the transaction whose compare-and-set won that change, so a duplicate message, a second
coordinator or a killed worker can never write a second one, and a crash after the
commit cannot lose it. The row's id is the receiver's dedupe key.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from orchestrator.model import notify, records, spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.notify import Event
from orchestrator.model.states import RunState, TaskState
from orchestrator.store import sql_outbox as sql
from orchestrator.store.results import Change, Outgoing

MAX_ERROR = 2000
"""Characters of an error an alert carries (the run view has the whole traceback)."""


@dataclasses.dataclass(frozen=True)
class Happened:
    """One alertable event of a run."""

    event: Event
    task_id: str | None = None
    attempt: int | None = None
    error: str | None = None


def events_of(change: Change, alerts: notify.Alerts | None, error: str | None) -> list[Happened]:
    """What a committed change has to tell. ``error``: the failed attempt's, if any."""
    out: list[Happened] = []
    if change.retry is not None:
        task_id, attempt, _ = change.retry
        out.append(Happened(Event.TASK_RETRIED, task_id, attempt - 1, error))
    for task_id, state in change.finished:
        if spec.split_task_id(task_id)[1] is not None:
            continue  # a mapped instance: its mapped task is what alerts
        if state == TaskState.FAILED:
            ended = next((e.attempt for e in change.ended if e.task_id == task_id), None)
            out.append(Happened(Event.TASK_FAILED, task_id, ended,
                                error if ended is not None else None))
        elif (state == TaskState.SUCCESS and alerts is not None
              and alerts.callback(Event.TASK_SUCCEEDED, task_id)):
            out.append(Happened(Event.TASK_SUCCEEDED, task_id))
    if change.run_state == RunState.FAILED:
        # its first failed task's error, read then; else (a run timed out) ``error``
        out.append(Happened(Event.RUN_FAILED, error=error))
    elif change.run_state == RunState.SUCCESS:
        out.append(Happened(Event.RUN_SUCCEEDED))
    return out


def record(conn: Connection, dag_id: str, change: Change, alerts: notify.Alerts | None,
           global_rules: Sequence[notify.Rule], now: dt.datetime, *,
           error: str | None = None) -> None:
    """Inside the change's transaction: close the run's deadline if it ended, and write
    the notifications its events call for (counted in ``change.notified``)."""
    if not change.applied or (alerts is None and not global_rules):
        return
    if change.run_state is not None and alerts is not None and alerts.deadline is not None:
        conn.execute(sql.CLOSE_DEADLINE, {"b_run": change.run_id, "b_now": now})
    happened = events_of(change, alerts, error)
    if happened:
        write(conn, dag_id, change.run_id, happened, alerts, global_rules, now, change)


def write(conn: Connection, dag_id: str, run_id: str, happened: Sequence[Happened],
          alerts: notify.Alerts | None, global_rules: Sequence[notify.Rule],
          now: dt.datetime, change: Change | None = None) -> int:
    rows: list[dict[str, Any]] = []
    rules = (*(alerts.rules if alerts is not None else ()), *global_rules)
    for h in happened:
        targets = [(r.channel, r.target) for r in rules if h.event in r.on]
        path = alerts.callback(h.event, h.task_id) if alerts is not None else None
        if path is not None:
            targets.append(("callback", {"callable": path}))
        if not targets:
            continue  # nobody is told of this one: no payload to read
        payload = _payload(conn, dag_id, run_id, h, now)
        # "n" first: the id travels as a callback message's task id, which starts so
        rows += [{"id": "n" + uuid.uuid4().hex[:31], "event": h.event, "dag_id": dag_id,
                  "run_id": run_id, "task_id": h.task_id, "attempt": h.attempt,
                  "channel": channel, "target": target, "payload": payload,
                  "state": sql.PENDING, "tries": 0, "next_at": now, "created_at": now}
                 for channel, target in targets]
    if rows:
        conn.execute(sql.INSERT, rows)
    if change is not None:
        change.notified += len(rows)
    return len(rows)


def _payload(conn: Connection, dag_id: str, run_id: str, h: Happened,
             now: dt.datetime) -> dict[str, Any]:
    task_id, error = h.task_id, h.error
    if h.event == Event.RUN_FAILED and task_id is None:
        first = conn.execute(sql.FIRST_FAILURE, {"b_run": run_id}).first()
        if first is not None:
            task_id, error = first.task_id, first.error or error
    return {"event": str(h.event), "dag_id": dag_id, "run_id": run_id, "task_id": task_id,
            "attempt": h.attempt, "error": None if error is None else error[:MAX_ERROR],
            "at": now.isoformat()}


# -- deadlines --------------------------------------------------------------------------


def open_deadline(conn: Connection, dag: CompiledDag, run_id: str, now: dt.datetime,
                  logical_time: dt.datetime | None) -> None:
    """With the run: when it must have ended, if its DAG says."""
    alerts = dag.plan.alerts
    if alerts is None or alerts.deadline is None:
        return
    due = notify.deadline_at(alerts.deadline, started=now, logical_time=logical_time,
                             zone=ZoneInfo(dag.spec.timezone))
    conn.execute(sql.INSERT_DEADLINE, {"run_id": run_id, "dag_id": dag.id, "due_at": due,
                                       "state": sql.OPEN})


def miss_deadlines(conn: Connection, now: dt.datetime, limit: int
                   ) -> list[tuple[str, str, dt.datetime]]:
    """Mark open deadlines past due as missed: (run, DAG, due) of each this one won."""
    return [(r.run_id, r.dag_id, r.due_at) for r in conn.execute(
        sql.MISS_DEADLINES, {"b_now": now, "b_limit": limit})]


# -- delivery ---------------------------------------------------------------------------


def claim(conn: Connection, holder: str, *, limit: int, lease: float, now: dt.datetime
          ) -> list[Outgoing]:
    """Take up to ``limit`` due notifications for ``lease`` seconds, recording the try."""
    wall = time.time()
    token = uuid.uuid4().hex
    rows = conn.execute(sql.CLAIM, {"b_now": now, "b_wall": wall, "b_limit": limit,
                                    "b_lease": wall + lease, "b_token": token}).all()
    if rows:
        conn.execute(sql.START_TRY, [{"notification_id": r.id, "attempt": r.tries,
                                      "holder": holder[:200], "started_at": now}
                                     for r in rows])
    return [Outgoing(r.id, r.event, r.dag_id, r.run_id, r.task_id, r.attempt,
                             r.channel, r.target, r.payload, r.tries, token) for r in rows]


def finish(conn: Connection, out: Outgoing, *, delivered: bool, status: int | None,
           detail: str | None, retry_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Record how a try went: delivered, to be tried again at ``retry_at``, or given up
    (neither). False when the lease was lost (another sender took the row over)."""
    state = sql.DELIVERED if delivered else sql.PENDING if retry_at else sql.FAILED
    detail = None if detail is None else detail[:MAX_ERROR]
    done = conn.execute(sql.FINISH, {
        "b_id": out.id, "b_token": out.token, "b_state": state, "b_next": retry_at or now,
        "b_error": None if delivered else detail,
        "b_delivered": now if delivered else None}).rowcount == 1
    conn.execute(sql.END_TRY, {"b_id": out.id, "b_try": out.tries, "b_now": now,
                               "b_outcome": "delivered" if delivered else "failed",
                               "b_status": status, "b_detail": detail})
    return done


# -- reads ------------------------------------------------------------------------------


def of_run(conn: Connection, run_id: str) -> list[records.Notification]:
    return _with_tries(conn, conn.execute(sql.OF_RUN, {"b_run": run_id}).all())


def recent(conn: Connection, limit: int, state: str | None = None
           ) -> list[records.Notification]:
    if state is None:
        return _with_tries(conn, conn.execute(sql.RECENT, {"b_limit": limit}).all())
    return _with_tries(conn, conn.execute(sql.RECENT_IN_STATE,
                                          {"b_limit": limit, "b_state": state}).all())


def listed(conn: Connection, notification_id: str) -> records.Notification | None:
    found = _with_tries(conn, conn.execute(sql.LISTED_ONE, {"b_id": notification_id}).all())
    return found[0] if found else None


def with_prefix(conn: Connection, prefix: str, limit: int) -> list[str]:
    return [str(i) for i in conn.execute(sql.WITH_PREFIX,
                                         {"b_prefix": prefix, "b_limit": limit}).scalars()]


def one(conn: Connection, notification_id: str) -> Outgoing | None:
    r = conn.execute(sql.ONE, {"b_id": notification_id}).first()
    if r is None or r.state != sql.SENDING:
        return None
    return Outgoing(r.id, r.event, r.dag_id, r.run_id, r.task_id, r.attempt,
                            r.channel, r.target, r.payload, r.tries, r.lease_token)


def _with_tries(conn: Connection, rows: Sequence[Any]) -> list[records.Notification]:
    tries: dict[str, list[records.Delivery]] = {}
    ids = [r.id for r in rows]
    for i in range(0, len(ids), 900):
        for d in conn.execute(sql.TRIES_OF, {"b_ids": ids[i:i + 900]}):
            tries.setdefault(d.notification_id, []).append(records.Delivery(
                attempt=d.attempt, holder=d.holder, started_at=d.started_at,
                finished_at=d.finished_at, outcome=d.outcome, status=d.status,
                detail=d.detail))
    return [records.Notification(**{k: getattr(r, k) for k in _FIELDS},
                                 deliveries=tries.get(r.id, []))
            for r in rows]


_FIELDS = ("id", "event", "dag_id", "run_id", "task_id", "attempt", "channel", "state",
           "tries", "next_at", "last_error", "created_at", "delivered_at", "payload")
