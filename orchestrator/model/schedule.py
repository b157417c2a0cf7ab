"""Pure: what a DAG's ``schedule`` means, and when it fires.

A schedule is a cron expression (5 fields, or 6 with seconds first), an alias
(``@daily``...), an interval (``every 15m``), a named event (``{event: NAME}``) or assets
(``{assets: [...], when: any|all}``). Cron math is cronsim's, in the DAG's IANA zone:
cronsim steps over a local time that does not exist (spring forward) to the next one
that does, and fires a repeated local time (fall back) once, where croniter 7.0 was
measured firing it twice. Intervals are aligned to the UNIX epoch in UTC, so ``every 1h``
is 24 runs on every UTC day whatever the local clocks do. Every time in and out is an
aware UTC datetime; a run's logical time is its tick, its data interval
``[tick, next tick)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from orchestrator import errors

ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
_EVERY = re.compile(r"every\s+(\d+(?:\.\d+)?)\s*(s|m|h|d)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ASSET_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_./:-]{0,199}"
_ASSET = re.compile(ASSET_PATTERN)


@dataclasses.dataclass(frozen=True)
class Cron:
    expr: str
    zone: ZoneInfo


@dataclasses.dataclass(frozen=True)
class Every:
    seconds: float


@dataclasses.dataclass(frozen=True)
class OnEvent:
    name: str


@dataclasses.dataclass(frozen=True)
class OnAssets:
    names: tuple[str, ...]
    when: Literal["any", "all"] = "any"


Schedule = Cron | Every | OnEvent | OnAssets


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.DagError(f"unknown timezone {name!r}: use an IANA name such as "
                              "'Europe/Zurich' or 'UTC'") from None


def parse(value: str | Mapping[str, Any] | None, timezone: str = "UTC") -> Schedule | None:
    """The schedule ``value`` names; DagError with what is wrong otherwise."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _trigger(value)
    if not isinstance(value, str):
        raise errors.DagError(f"schedule must be a string or a mapping, got {value!r}")
    text = value.strip()
    every = _EVERY.fullmatch(text)
    if every:
        seconds = float(every.group(1)) * _UNIT[every.group(2)]
        if not 1 <= seconds <= 366 * 86400 or not math.isfinite(seconds):
            raise errors.DagError(f"schedule {value!r}: an interval is 1 s to 366 days")
        return Every(seconds)
    expr = ALIASES.get(text.lower(), text)
    if expr.startswith("@"):
        raise errors.DagError(f"schedule {value!r}: unknown alias; one of "
                              f"{', '.join(ALIASES)}")
    if len(expr.split()) not in (5, 6):
        raise errors.DagError(f"schedule {value!r}: a cron expression has 5 fields (6 with "
                              "seconds first), or use an alias (@daily) or 'every 15m'")
    tz = zone(timezone)
    try:
        next(iter(CronSim(expr, dt.datetime(2000, 1, 1, tzinfo=tz))))
    except (CronSimError, StopIteration) as exc:
        raise errors.DagError(f"schedule {value!r}: {exc or 'never fires'}") from None
    return Cron(expr, tz)


def _trigger(value: Mapping[str, Any]) -> Schedule:
    if set(value) == {"event"}:
        name = value["event"]
        if not isinstance(name, str) or not _ASSET.fullmatch(name):
            raise errors.DagError(f"schedule event name {name!r} must match {ASSET_PATTERN}")
        return OnEvent(name)
    if "assets" in value and set(value) <= {"assets", "when"}:
        names = value["assets"]
        when = value.get("when", "any")
        if (not isinstance(names, list | tuple) or not names
                or not all(isinstance(n, str) and _ASSET.fullmatch(n) for n in names)):
            raise errors.DagError(f"schedule assets must be a non-empty list of names "
                                  f"matching {ASSET_PATTERN}, got {names!r}")
        if when not in ("any", "all"):
            raise errors.DagError(f"schedule 'when' must be any or all, got {when!r}")
        return OnAssets(tuple(dict.fromkeys(names)), when)
    raise errors.DagError(f"schedule mapping must be {{event: NAME}} or "
                          f"{{assets: [...], when: any|all}}, got keys {sorted(value)}")


def timed(s: Schedule | None) -> bool:
    return isinstance(s, Cron | Every)


def next_tick(s: Cron | Every, after: dt.datetime) -> dt.datetime:
    """The first tick strictly after ``after``."""
    if isinstance(s, Every):
        n = math.floor((after - _EPOCH).total_seconds() / s.seconds) + 1
        return _EPOCH + dt.timedelta(seconds=n * s.seconds)
    local = after.astimezone(s.zone)
    for t in CronSim(s.expr, local):
        tick = t.astimezone(dt.UTC)
        if tick > after:  # cronsim starts strictly after its start, to the second
            return tick
    raise errors.DagError(f"schedule {s.expr!r} never fires again")  # pragma: no cover


def ticks(s: Cron | Every, after: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Ticks t with after < t <= until, in order: the ticks ``next_tick`` gives one by one,
    from one cronsim walk (a year of hourly ticks is 8,760 steps, not 8,760 walks)."""
    if isinstance(s, Every):
        t = next_tick(s, after)
        while t <= until:
            yield t
            t += dt.timedelta(seconds=s.seconds)
        return
    last = after
    for local in CronSim(s.expr, after.astimezone(s.zone)):
        tick = local.astimezone(dt.UTC)
        if tick > until:
            return
        if tick > last:  # as next_tick: strictly after the one before
            yield tick
            last = tick


def interval(s: Cron | Every, tick: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The data interval of the run at logical time ``tick``."""
    return tick, next_tick(s, tick)


def describe(data: Mapping[str, Any] | str | None) -> str | None:
    """A schedule as people read it (the DAG list, ``schedules list``)."""
    if data is None or isinstance(data, str):
        return data
    if "event" in data:
        return f"event {data['event']}"
    if "assets" in data:
        return f"assets ({data.get('when', 'any')}) {', '.join(data['assets'])}"
    return str(data)
