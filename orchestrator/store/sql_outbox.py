"""The statements of the alerts outbox and run deadlines, built once with ``b_*`` params."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, insert, or_, select, update

from orchestrator.model.states import TaskState
from orchestrator.store.tables import deadlines, deliveries, notifications, runs, task_instances

_n, _d, _ti = notifications, deadlines, task_instances

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
OPEN, CLOSED, MISSED = "open", "closed", "missed"

INSERT = insert(_n)
INSERT_DEADLINE = insert(_d)
CLOSE_DEADLINE = update(_d).where(_d.c.run_id == bindparam("b_run"), _d.c.state == OPEN
                                  ).values(state=CLOSED, closed_at=bindparam("b_now"))
"""In the run's final transaction: from then on the deadline can never be missed."""

_overdue = (select(_d.c.run_id).where(_d.c.state == OPEN, _d.c.due_at <= bindparam("b_now"))
            .order_by(_d.c.due_at).limit(bindparam("b_limit"))
            .with_for_update(skip_locked=True))
ANY_OVERDUE = (select(_d.c.run_id).where(_d.c.state == OPEN, _d.c.due_at <= bindparam("b_now"))
               .limit(1))
"""A read first: most passes find no deadline due, and need no turn of the writer."""
MISS_DEADLINES = (update(_d).where(_d.c.run_id.in_(_overdue.scalar_subquery()),
                                   _d.c.state == OPEN)
                  .values(state=MISSED, closed_at=bindparam("b_now"))
                  .returning(_d.c.run_id, _d.c.dag_id, _d.c.due_at))
"""Compare-and-set against the run's end: of the two, one wins the open row."""

RUN_VERSION = select(runs.c.dag_version).where(runs.c.id == bindparam("b_run"))
FIRST_FAILURE = (select(_ti.c.task_id, _ti.c.error)
                 .where(_ti.c.run_id == bindparam("b_run"), _ti.c.state == TaskState.FAILED)
                 .order_by(_ti.c.finished_at, _ti.c.task_id).limit(1))
"""What a run_failed alert names: the first task that failed, and why."""

_due = or_(and_(_n.c.state == PENDING, _n.c.next_at <= bindparam("b_now")),
           # a sender that died mid-send: its lease ran out, so the try is made again
           and_(_n.c.state == SENDING, _n.c.lease_until < bindparam("b_wall")))
_claimable = (select(_n.c.id).where(_due).order_by(_n.c.next_at)
              .limit(bindparam("b_limit")).with_for_update(skip_locked=True))
CLAIM = (update(_n).where(_n.c.id.in_(_claimable.scalar_subquery()), _due)
         .values(state=SENDING, tries=_n.c.tries + 1, lease_until=bindparam("b_lease"),
                 lease_token=bindparam("b_token"))
         .returning(*_n.c))
START_TRY = insert(deliveries)
_held = (_n.c.id == bindparam("b_id"), _n.c.lease_token == bindparam("b_token"),
         _n.c.state == SENDING)
FINISH = update(_n).where(*_held).values(
    state=bindparam("b_state"), next_at=bindparam("b_next"), lease_until=None,
    lease_token=None, last_error=bindparam("b_error"), delivered_at=bindparam("b_delivered"))
"""Fenced by the claim's token: a sender whose lease was taken over records nothing."""
END_TRY = update(deliveries).where(
    deliveries.c.notification_id == bindparam("b_id"), deliveries.c.attempt == bindparam("b_try"),
    deliveries.c.finished_at.is_(None)).values(
    finished_at=bindparam("b_now"), outcome=bindparam("b_outcome"),
    status=bindparam("b_status"), detail=bindparam("b_detail"))

_listed = (_n.c.id, _n.c.event, _n.c.dag_id, _n.c.run_id, _n.c.task_id, _n.c.attempt,
           _n.c.channel, _n.c.state, _n.c.tries, _n.c.next_at, _n.c.last_error,
           _n.c.created_at, _n.c.delivered_at, _n.c.payload)
OF_RUN = select(*_listed).where(_n.c.run_id == bindparam("b_run")).order_by(
    _n.c.created_at, _n.c.id)
ONE = select(*_listed, _n.c.target, _n.c.lease_token).where(_n.c.id == bindparam("b_id"))
RECENT = select(*_listed).order_by(_n.c.created_at.desc(), _n.c.id.desc()).limit(
    bindparam("b_limit"))
RECENT_IN_STATE = select(*_listed).where(_n.c.state == bindparam("b_state")).order_by(
    _n.c.created_at.desc(), _n.c.id.desc()).limit(bindparam("b_limit"))
LISTED_ONE = select(*_listed).where(_n.c.id == bindparam("b_id"))
"""One notification as listed: never its target (the URL or address, maybe a secret)."""
WITH_PREFIX = select(_n.c.id).where(_n.c.id.startswith(bindparam("b_prefix"))).order_by(
    _n.c.id).limit(bindparam("b_limit"))
TRIES_OF = (select(deliveries).where(deliveries.c.notification_id.in_(
    bindparam("b_ids", expanding=True)))
    .order_by(deliveries.c.notification_id, deliveries.c.attempt))
