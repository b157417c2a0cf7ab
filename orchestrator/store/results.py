"""What the store's transactions return: frozen answers, and the Change a write made.

A :class:`Change` says everything one transaction moved: tasks now queued (to send),
a retry scheduled, attempts ended, tasks finished, the run's end, attempts to terminate.
Control turns it into messages and hook calls; the store itself never sends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from orchestrator.model.states import AttemptOutcome, RunState, TaskState


@dataclasses.dataclass(frozen=True)
class NewRun:
    run_id: str
    created: bool
    queued: tuple[tuple[str, int], ...] | None = None
    """The initial tasks queued, when some wait for a pool slot (None: all of them)."""
    elsewhere: tuple[tuple[str, str, int], ...] = ()
    """Waiters of other runs its pool fill admitted (see Change.elsewhere)."""


@dataclasses.dataclass(frozen=True)
class RunStart:
    """How a run starts, beyond its params: what triggered it, its logical time and data
    interval [start, end), and whether it waits for a run slot (``queued``: created in
    state queued with no task queued; the transaction that frees a slot starts it)."""

    trigger: str = "manual"
    logical_time: dt.datetime | None = None
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    payload: Any = None
    backfill_id: str | None = None
    queued: bool = False


@dataclasses.dataclass(frozen=True)
class RunHeader:
    """What never changes about a run after submit: read once per run per process."""

    run_id: str
    dag_id: str
    version: str | None
    """The DAG version it was submitted with (None for runs older than versions)."""
    params: dict[str, Any]
    trigger: str = "manual"
    logical_time: dt.datetime | None = None
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    payload: Any = None
    """The event payload (or consumed asset events) that triggered it."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claimed attempt: what the worker needs to run it."""

    attempt: int
    lost_attempts: int
    max_attempts: int
    """Retry while ``attempt - lost_attempts`` is below this (a rerun raises it)."""
    upstream: dict[str, Any]
    item: Any = None
    """For an instance of a mapped task: its item."""
    token: str | None = None
    """Fences this claim: its result and lease renewals count only while it holds."""
    took_over: int | None = None
    """The lost attempt this claim took over (it ended ``lost`` in the same transaction)."""


@dataclasses.dataclass(frozen=True)
class GiveUp:
    """Fail the lost attempt instead of taking it over: its worker was lost too many
    times (no retries: a task that keeps killing its worker must not loop), or it is
    past its timeout (retries as for any timeout)."""

    attempt: int
    lost_attempts: int
    max_attempts: int = 0
    error_type: str = "WorkerLost"
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Busy:
    """The task is running under a live lease; look again when it expires."""

    lease_expires_at: float
    attempt: int
    """The attempt that holds the lease (the message may name an older one)."""


@dataclasses.dataclass(frozen=True)
class NotDue:
    """The attempt waits out its retry backoff until ``due``: a message that came early
    (from a clock ahead of ours, or sent early on purpose) is looked at again then."""

    due: dt.datetime
    attempt: int


@dataclasses.dataclass(frozen=True)
class AttemptEnd:
    task_id: str
    attempt: int
    outcome: AttemptOutcome
    error_type: str | None = None


@dataclasses.dataclass
class Change:
    """What one transaction changed. Filled while it runs; read-only once returned."""

    run_id: str
    applied: bool = True
    queued: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    """Tasks (with their attempt) that became ready: to send."""
    retry: tuple[str, int, float] | None = None
    """A retry scheduled: task, its next attempt, and the delay before it is due."""
    ended: list[AttemptEnd] = dataclasses.field(default_factory=list)
    finished: list[tuple[str, TaskState]] = dataclasses.field(default_factory=list)
    """Tasks that reached a final state (mapped instances included)."""
    run_state: RunState | None = None
    """The run's end, if this transaction ended it."""
    terminate: list[str] = dataclasses.field(default_factory=list)
    """Celery ids of attempts that were running: to terminate."""
    started_runs: list[str] = dataclasses.field(default_factory=list)
    """Other runs this transaction started (a queued run given a freed run slot, a run an
    asset or event triggered): send their queued tasks."""
    elsewhere: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    """Tasks of other runs (run, task, attempt) this transaction queued: a pool slot it
    freed went to a waiter there."""
    notified: int = 0
    """Notifications it wrote to the outbox: the coordinators are woken to deliver them."""

    @classmethod
    def nothing(cls, run_id: str) -> Change:
        """The compare-and-set matched no row: another process got there first."""
        return cls(run_id, applied=False)


@dataclasses.dataclass(frozen=True)
class Stalled:
    """A task the database says should be progressing but is not."""

    run_id: str
    dag_id: str
    task_id: str
    attempt: int
    state: TaskState
    queued_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Overdue:
    """A running attempt past its timeout that its worker did not stop."""

    run_id: str
    dag_id: str
    task_id: str
    attempt: int
    lost_attempts: int
    max_attempts: int
    celery_id: str | None


@dataclasses.dataclass(frozen=True)
class Rerun:
    """A rerun's change, and every new attempt number."""

    change: Change
    attempts: dict[str, int]


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """A notification claimed for one try: ``token`` fences what the sender records."""

    id: str
    event: str
    dag_id: str
    run_id: str
    task_id: str | None
    attempt: int | None
    channel: str
    target: dict[str, Any]
    payload: dict[str, Any]
    tries: int
    token: str
