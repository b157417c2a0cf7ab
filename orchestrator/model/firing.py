"""Pure: which of a schedule's due ticks a pass fires, by the DAG's catchup policy.

The ticks due are those from the stored next fire (itself the first) up to now. ``all``
fires the last ``max_catchup`` of them, ``latest`` only the most recent, ``none`` only
those at most ``grace`` seconds late; the others are counted as skipped. Intervals are
stepped arithmetically (a coordinator down a week on ``every 1s`` is 600k ticks, and
only the kept ones are built); cron ticks are walked, keeping only what is fired."""

from __future__ import annotations

import collections
import datetime as dt
import math

from orchestrator.model import schedule

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def due_ticks(s: schedule.Cron | schedule.Every, first: dt.datetime, now: dt.datetime, *,
              catchup: str, max_catchup: int, grace: float) -> tuple[list[dt.datetime], int]:
    """(the ticks to fire, in order; how many due ticks are skipped)."""
    if first > now:
        return [], 0
    if isinstance(s, schedule.Every):
        return _every(s.seconds, first, now, catchup, max_catchup, grace)
    keep = 1 if catchup == "latest" else max_catchup if catchup == "all" else None
    kept: collections.deque[dt.datetime] = collections.deque(maxlen=keep)
    total = 0
    oldest_fine = now - dt.timedelta(seconds=grace)
    tick = first
    while tick <= now:
        total += 1
        if keep is not None or tick >= oldest_fine:
            kept.append(tick)
        tick = schedule.next_tick(s, tick)
    return list(kept), total - len(kept)


def _every(seconds: float, first: dt.datetime, now: dt.datetime, catchup: str,
           max_catchup: int, grace: float) -> tuple[list[dt.datetime], int]:
    # Tick n is EPOCH + n * seconds, as schedule.next_tick computes it.
    lo = round((first - _EPOCH).total_seconds() / seconds)
    hi = math.floor((now - _EPOCH).total_seconds() / seconds)
    while _at(hi, seconds) > now:  # float rounding at the edge
        hi -= 1
    while _at(hi + 1, seconds) <= now:
        hi += 1
    total = hi - lo + 1
    if total <= 0:
        return [], 0
    if catchup == "latest":
        start = hi
    elif catchup == "all":
        start = max(lo, hi - max_catchup + 1)
    else:
        start = max(lo, math.ceil(((now - _EPOCH).total_seconds() - grace) / seconds))
        while start > lo and _at(start - 1, seconds) >= now - dt.timedelta(seconds=grace):
            start -= 1
        while start <= hi and _at(start, seconds) < now - dt.timedelta(seconds=grace):
            start += 1
    kept = [_at(n, seconds) for n in range(start, hi + 1)]
    return kept, total - len(kept)


def _at(n: int, seconds: float) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=n * seconds)
