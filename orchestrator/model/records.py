"""What the client, CLI and API hand back: frozen, JSON-ready views of stored state."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.model.states import FINISHED_RUN, AttemptOutcome, RunState, TaskState


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


LOST_WORKER_MARKER = "[orchestrator] worker lost: output after the last flush is missing\n"
"""The last chunk of an attempt that ended lost (written with that outcome)."""


def truncation_marker(max_bytes: int) -> str:
    """The last chunk of an attempt whose output reached ORCH_MAX_LOG_BYTES."""
    return f"[orchestrator] log truncated: ORCH_MAX_LOG_BYTES ({max_bytes} bytes) reached\n"


class LogChunk(_Record):
    """One flush of an attempt's output (stdout, stderr, ``logging``), masked."""

    seq: int
    """From 1 per attempt, in flush order: read on with ``after=seq``."""
    at: dt.datetime
    data: str


class Attempt(_Record):
    attempt: int
    outcome: AttemptOutcome
    worker: str | None = None
    pid: int | None = None
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    dag_version: str | None = None
    """The DAG version the worker that ran it had loaded."""
    celery_id: str | None = None
    """The Celery task id of its message (Flower's task page)."""


class TaskInstance(_Record):
    task_id: str
    state: TaskState
    attempt: int
    max_attempts: int
    worker: str | None = None
    error: str | None = None
    result: Any = None
    queued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    map_count: int | None = None
    """A mapped task: how many items it was expanded to."""
    map_done: int | None = None
    map_failed: int | None = None
    map_parent: str | None = None
    """An instance of a mapped task (``name[i]``): the mapped task, its index and item."""
    map_index: int | None = None
    map_item: Any = None
    attempts: list[Attempt] = []

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Run(_Record):
    id: str
    dag_id: str
    state: RunState
    params: dict[str, Any]
    idempotency_key: str | None = None
    total_tasks: int
    unfinished: int
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    dag_version: str | None = None
    """The DAG version it was submitted with (what its tasks run from)."""
    trigger: str = "manual"
    """What started it: manual (client, CLI, API, page), schedule, event, asset, backfill."""
    logical_time: dt.datetime | None = None
    """The tick it is for (scheduled runs, or given at submit); unique per DAG."""
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    """Its data interval [start, end)."""
    backfill_id: str | None = None
    tasks: dict[str, TaskInstance] = {}

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_RUN


class Role(enum.StrEnum):
    """What an API token may do: viewers read, operators also trigger, cancel and rerun."""

    VIEWER = "viewer"
    OPERATOR = "operator"


class ApiToken(_Record):
    """An API token as listed: never the token, never its hash."""

    id: str
    name: str
    role: Role
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class DagState(_Record):
    """A DAG's pause state and schedule as listed (``schedule`` is human text)."""

    dag_id: str
    paused: bool
    schedule: str | None = None
    timezone: str | None = None
    catchup: str | None = None
    next_fire: dt.datetime | None = None
    last_fire: dt.datetime | None = None
    skipped: int = 0
    max_active_runs: int | None = None


class Pool(_Record):
    """A slot pool as listed: ``slots`` None is unbounded. ``used`` counts the slots of
    its queued, running and up-for-retry tasks; ``waiting`` the tasks waiting for one."""

    name: str
    slots: int | None
    used: int
    queued: int
    running: int
    waiting: int
    description: str = ""


class Backfill(_Record):
    """A backfill of a DAG's logical times in [start, end): ``handled`` of its ``total``
    (a run started, rerun, or left as it was), at most ``max_active`` runs at once, the
    next logical time at ``cursor``."""

    id: str
    dag_id: str
    start: dt.datetime
    end: dt.datetime
    reprocess: str
    max_active: int
    total: int
    handled: int
    cursor: dt.datetime | None = None
    state: str
    """running, success (every logical time handled and its runs ended), cancelled."""
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    runs: dict[str, int] = {}
    """Its runs by state."""


class Event(_Record):
    """A named event or an asset update, and what each subscriber DAG made of it:
    ``consumers`` (dag_id, the run that consumed it, None while pending)."""

    id: str
    kind: str
    name: str
    payload: Any = None
    created_at: dt.datetime
    run_id: str | None = None
    """For an asset event: the producing task's run and task."""
    task_id: str | None = None
    consumers: list[tuple[str, str | None]] = []


class Delivery(_Record):
    """One try of a notification: who made it, when, and how it went."""

    attempt: int
    holder: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    outcome: str | None = None
    """delivered or failed; None while (or if it was cut off while) being made."""
    status: int | None = None
    """The receiver's HTTP status or SMTP reply code, when it gave one."""
    detail: str | None = None


NOTIFICATION_STATES = ("pending", "sending", "delivered", "failed")
"""A notification's states: waiting (or waiting to be tried again), being sent, sent,
given up."""


class Notification(_Record):
    """An alert in the outbox: ``id`` is the dedupe key receivers get."""

    id: str
    event: str
    dag_id: str
    run_id: str
    task_id: str | None = None
    attempt: int | None = None
    channel: str
    """webhook, slack, email or callback."""
    state: str
    """pending, sending, delivered or failed (given up)."""
    tries: int
    next_at: dt.datetime
    last_error: str | None = None
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None
    payload: dict[str, Any] = {}
    deliveries: list[Delivery] = []
