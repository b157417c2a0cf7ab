"""The statements of named events and asset events, built once at import with bound
parameters ``b_*`` like every statement of the store."""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, insert, or_, select, update

from orchestrator.model.states import RunState
from orchestrator.store.tables import dag_triggers, dags, event_queue, events, runs

INSERT_EVENT = insert(events)
INSERT_QUEUE = insert(event_queue)

SUBSCRIBERS = select(dag_triggers.c.dag_id).where(
    dag_triggers.c.kind == bindparam("b_kind"),
    dag_triggers.c.name.in_(bindparam("b_names", expanding=True))).distinct().order_by(
    dag_triggers.c.dag_id)
"""In dag_id order: the consumers' rows are locked in that order, so two producers never
wait on each other in a circle."""

LOCK_DAG = select(dags.c.paused, dags.c.version, dags.c.max_active_runs).where(
    dags.c.dag_id == bindparam("b_dag")).with_for_update()
"""Serialises the consumers' decisions (PostgreSQL): of two producers of an ``all``
consumer's assets, the second sees the first's pending event."""

ACTIVE_RUNS = select(func.count()).select_from(runs).where(
    runs.c.dag_id == bindparam("b_dag"), runs.c.state.in_([RunState.RUNNING, RunState.QUEUED]))

PENDING_OF = select(events.c.id, events.c.kind, events.c.name, events.c.payload,
                    events.c.run_id, events.c.task_id, events.c.created_at).join(
    event_queue, event_queue.c.event_id == events.c.id).where(
    event_queue.c.dag_id == bindparam("b_dag"), event_queue.c.run_id.is_(None)).order_by(
    events.c.created_at, events.c.id)

CONSUME = update(event_queue).where(
    event_queue.c.dag_id == bindparam("b_dag"),
    event_queue.c.event_id.in_(bindparam("b_ids", expanding=True)),
    event_queue.c.run_id.is_(None)).values(
    run_id=bindparam("b_run"), consumed_at=bindparam("b_now", type_=event_queue.c.consumed_at.type))

TRIGGERS_OF = select(dag_triggers.c.kind, dag_triggers.c.name).where(
    dag_triggers.c.dag_id == bindparam("b_dag"))

ORPHANS = select(events.c.id).where(
    events.c.kind == bindparam("b_kind"),
    events.c.name.in_(bindparam("b_names", expanding=True)),
    ~exists().where(event_queue.c.event_id == events.c.id)).order_by(
    events.c.created_at).limit(bindparam("b_limit"))
"""Events nobody subscribed to when they happened: a DAG that subscribes later takes them."""

_kind = bindparam("b_kind", type_=events.c.kind.type)
_name = bindparam("b_name", type_=events.c.name.type)
_pending = or_(
    exists().where(event_queue.c.event_id == events.c.id, event_queue.c.run_id.is_(None)),
    ~exists().where(event_queue.c.event_id == events.c.id))

# coalesce, not "b IS NULL OR": PostgreSQL cannot type a parameter only compared with NULL.
_LIST = select(events).where(events.c.kind == func.coalesce(_kind, events.c.kind),
                             events.c.name == func.coalesce(_name, events.c.name))
LIST_EVENTS = _LIST.order_by(events.c.created_at.desc(), events.c.id.desc()).limit(
    bindparam("b_limit"))
LIST_PENDING = _LIST.where(_pending).order_by(
    events.c.created_at.desc(), events.c.id.desc()).limit(bindparam("b_limit"))

QUEUE_OF = select(event_queue.c.event_id, event_queue.c.dag_id, event_queue.c.run_id).where(
    event_queue.c.event_id.in_(bindparam("b_ids", expanding=True))).order_by(
    event_queue.c.dag_id)
