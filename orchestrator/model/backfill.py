"""Pure: which logical times a backfill covers, and which existing runs it runs again.

A backfill covers the ticks t of the DAG's time schedule with start <= t < end, the
same half-open interval as a run's data interval. ``reprocess`` says what to do with a
tick that has a run already: ``none`` leaves it, ``failed`` reruns it if it failed
(its failed tasks), ``all`` reruns any finished run from its roots."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, get_args

from orchestrator import errors
from orchestrator.model import schedule
from orchestrator.model.states import RunState

Reprocess = Literal["none", "failed", "all"]
REPROCESS: tuple[str, ...] = get_args(Reprocess)
_TICK = dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Window:
    total: int
    first: dt.datetime | None
    last: dt.datetime | None


def timed(spec_schedule: str | Mapping[str, Any] | None, timezone: str,
          dag_id: str) -> schedule.Cron | schedule.Every:
    """The DAG's time schedule, or InvalidArgument: only those have logical times to fill."""
    s = schedule.parse(spec_schedule, timezone)
    if not isinstance(s, schedule.Cron | schedule.Every):
        raise errors.InvalidArgument(
            f"DAG {dag_id!r} has no time schedule (cron, alias or interval), so it has no "
            "logical times to backfill: submit runs with a logical_time instead")
    return s


def window(s: schedule.Cron | schedule.Every, start: dt.datetime, end: dt.datetime, *,
           max_runs: int) -> Window:
    """Count the ticks in [start, end); InvalidArgument beyond ``max_runs`` or for an
    empty or reversed interval."""
    start, end = utc(start), utc(end)
    if end <= start:
        raise errors.InvalidArgument(f"a backfill's end ({end.isoformat()}) must be after "
                                     f"its start ({start.isoformat()})")
    first = last = None
    total = 0
    for t in schedule.ticks(s, start - _TICK, end - _TICK):
        total += 1
        if total > max_runs:
            raise errors.InvalidArgument(
                f"the backfill covers more than ORCH_MAX_BACKFILL_RUNS ({max_runs}) logical "
                "times: split it, or raise that setting")
        first = first or t
        last = t
    return Window(total, first, last)


def following(s: schedule.Cron | schedule.Every, tick: dt.datetime,
              end: dt.datetime) -> dt.datetime | None:
    """The backfill's tick after ``tick``, or None past its end."""
    nxt = schedule.next_tick(s, tick)
    return nxt if nxt < end else None


def reruns(mode: str, state: RunState) -> bool:
    """Whether a backfill reruns the finished run it finds at a tick."""
    if state not in (RunState.SUCCESS, RunState.FAILED, RunState.CANCELLED):
        return False  # still going: it is that tick's run already
    return mode == "all" or (mode == "failed" and state == RunState.FAILED)


def utc(t: dt.datetime) -> dt.datetime:
    """Naive times are UTC, as everywhere else."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
