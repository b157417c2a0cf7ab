"""The API's bodies for pools, named events and schedules (the runs' are in schemas)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.model import records


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolBody(_In):
    model_config = ConfigDict(extra="forbid", strict=True)  # "3" is not a number of slots

    slots: int | None = Field(description="How many slots it has (null: unbounded).")
    description: str | None = Field(default=None,
                                    description="What it is for (null: keep the one it has).")


class PoolList(_Out):
    pools: list[records.Pool]


class EventBody(_In):
    name: str = Field(description="The event's name: DAGs with schedule {event: NAME} run.")
    payload: Any = Field(default=None, description="What their tasks read (context().payload).")


class Emitted(_Out):
    event_id: str
    runs: list[str] = Field(description="Runs the event started or queued for a run slot.")
    pending: int = Field(description="Subscribers that left it pending (paused DAGs), or 1 "
                         "when no DAG is scheduled on it: it waits for one, never dropped.")


class EventList(_Out):
    events: list[records.Event]


class Schedule(_Out):
    dag_id: str
    paused: bool
    schedule: str | None
    timezone: str | None
    catchup: str | None
    next_fire: dt.datetime | None
    last_fire: dt.datetime | None
    skipped: int = Field(description="Ticks skipped (catchup beyond max_catchup, overlap).")
    max_active_runs: int | None


class ScheduleList(_Out):
    schedules: list[Schedule]


class Paused(_Out):
    dag_id: str
    paused: bool
    runs: list[str] = Field(default_factory=list,
                            description="Runs that unpausing started from pending events.")


class BackfillBody(_In):
    start: dt.datetime = Field(description="First logical time covered (naive: UTC).")
    end: dt.datetime = Field(description="End of the interval [start, end), not covered.")
    reprocess: Literal["none", "failed", "all"] = Field(
        default="none", description="A logical time that has a run: none (left), failed "
        "(its failed tasks rerun if it failed), all (rerun from its roots).")
    max_active: int = Field(default=1, ge=1, le=1000, description="Runs at a time.")
    dry_run: bool = Field(default=False, description="Count only; nothing written.")


class BackfillAccepted(_Out):
    backfill_id: str | None = Field(description="Null for a dry run.")
    total: int = Field(description="Logical times covered.")
    first: dt.datetime | None
    last: dt.datetime | None


class BackfillList(_Out):
    backfills: list[records.Backfill]


class BackfillCancelled(_Out):
    backfill_id: str
    cancelled_runs: list[str]
