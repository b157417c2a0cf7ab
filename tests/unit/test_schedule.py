"""Schedules: parsing, ticks and DST, with exact counts on both transition days."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator import errors
from orchestrator.model import schedule

UTC = dt.UTC


def _day_count(expr: str, tz: str, day: dt.date) -> int:
    """Ticks within the local calendar day ``day`` in ``tz``."""
    s = schedule.parse(expr, tz)
    assert isinstance(s, schedule.Cron | schedule.Every)
    z = schedule.zone(tz)
    start = dt.datetime.combine(day, dt.time(), z).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), z).astimezone(UTC)
    eps = dt.timedelta(microseconds=1)
    return len(list(schedule.ticks(s, start - eps, end - eps)))


# (zone, spring-forward day, fall-back day) in 2026; Lord Howe shifts by 30 minutes.
DST_DAYS = [("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1)),
            ("Europe/Zurich", dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
            ("Australia/Lord_Howe", dt.date(2026, 10, 4), dt.date(2026, 4, 5))]

# expression -> (runs on the spring day, runs on the fall day), per zone
EXPECTED = {
    "America/New_York": {"30 2 * * *": (1, 1), "30 1 * * *": (1, 1), "0 * * * *": (23, 25),
                         "*/30 * * * *": (46, 50), "every 1h": (23, 25)},
    "Europe/Zurich": {"30 2 * * *": (1, 1), "30 1 * * *": (1, 1), "0 * * * *": (23, 25),
                      "*/30 * * * *": (46, 50), "every 1h": (23, 25)},
    # 23.5- and 24.5-hour days: 02:00 does not exist in spring, 01:30-02:00 repeats in fall
    "Australia/Lord_Howe": {"30 2 * * *": (1, 1), "30 1 * * *": (1, 1),
                            "0 * * * *": (23, 24), "*/30 * * * *": (47, 49),
                            "every 1h": (23, 25)},
}


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_DAYS)
@pytest.mark.parametrize("expr", ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/30 * * * *",
                                  "every 1h"])
def test_dst_transition_days_have_exact_counts(tz: str, spring: dt.date, fall: dt.date,
                                               expr: str) -> None:
    assert (_day_count(expr, tz, spring), _day_count(expr, tz, fall)) == EXPECTED[tz][expr]


def test_fixed_time_on_fall_back_fires_once_at_the_first_occurrence() -> None:
    s = schedule.parse("30 1 * * *", "America/New_York")
    assert isinstance(s, schedule.Cron)
    after = dt.datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    first = schedule.next_tick(s, after)
    assert first == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert schedule.next_tick(s, first) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_nonexistent_local_time_runs_at_the_next_that_exists() -> None:
    s = schedule.parse("30 2 * * *", "Europe/Zurich")
    assert isinstance(s, schedule.Cron)
    tick = schedule.next_tick(s, dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC))
    # 02:30 does not exist that night: the run is at 03:00 local, once
    assert tick == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert tick.astimezone(s.zone).time() == dt.time(3, 0)


def test_six_fields_have_seconds_first_and_aliases_map_to_cron() -> None:
    s = schedule.parse("*/10 * * * * *")
    assert isinstance(s, schedule.Cron)
    t0 = dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert list(schedule.ticks(s, t0, t0 + dt.timedelta(seconds=30))) == [
        dt.datetime(2026, 1, 1, 0, 0, sec, tzinfo=UTC) for sec in (10, 20, 30)]
    daily = schedule.parse("@daily", "UTC")
    assert isinstance(daily, schedule.Cron) and daily.expr == "0 0 * * *"


def test_interval_is_epoch_aligned_and_the_data_interval_ends_at_the_next_tick() -> None:
    s = schedule.parse("every 15m")
    assert s == schedule.Every(900.0)
    t = schedule.next_tick(s, dt.datetime(2026, 5, 1, 10, 7, tzinfo=UTC))
    assert t == dt.datetime(2026, 5, 1, 10, 15, tzinfo=UTC)
    assert schedule.interval(s, t) == (t, t + dt.timedelta(minutes=15))
    # strictly after: a tick is never its own successor
    assert schedule.next_tick(s, t) == t + dt.timedelta(minutes=15)


def test_triggers_parse() -> None:
    assert schedule.parse({"event": "orders.loaded"}) == schedule.OnEvent("orders.loaded")
    assert schedule.parse({"assets": ["warehouse/orders", "warehouse/orders"],
                           "when": "all"}) == schedule.OnAssets(("warehouse/orders",), "all")
    assert not schedule.timed(schedule.parse({"event": "x"}))
    assert schedule.timed(schedule.parse("@hourly"))


@pytest.mark.parametrize(("value", "tz", "fragment"), [
    ("61 * * * *", "UTC", "61 * * * *"),
    ("* * *", "UTC", "5 fields"),
    ("@sometimes", "UTC", "unknown alias"),
    ("every 0s", "UTC", "1 s to 366 days"),
    ("@daily", "Mars/Olympus", "unknown timezone"),
    ({"event": ""}, "UTC", "event name"),
    ({"assets": []}, "UTC", "non-empty list"),
    ({"assets": ["a"], "when": "most"}, "UTC", "any or all"),
    ({"cron": "x"}, "UTC", "mapping must be"),
])
def test_bad_schedules_are_clear_errors(value: object, tz: str, fragment: str) -> None:
    with pytest.raises(errors.DagError) as info:
        schedule.parse(value, tz)  # type: ignore[arg-type]
    assert fragment in str(info.value)


@pytest.mark.parametrize("day", [dt.date(2026, 3, 8), dt.date(2026, 3, 29), dt.date(2026, 11, 1)])
def test_every_hour_is_24_ticks_on_every_utc_day(day: dt.date) -> None:
    s = schedule.parse("every 1h", "America/New_York")
    assert s is not None
    start = dt.datetime.combine(day, dt.time(), UTC)
    eps = dt.timedelta(microseconds=1)
    assert len(list(schedule.ticks(s, start - eps, start + dt.timedelta(days=1) - eps))) == 24


@pytest.mark.parametrize(("expr", "zone"), [
    ("@hourly", "UTC"), ("30 2 * * *", "Europe/Zurich"), ("0 * * * *", "Australia/Lord_Howe"),
    ("0 1,2,3 * * *", "America/New_York"), ("*/20 * * * * *", "America/New_York"),
    ("every 90s", "UTC")])
def test_ticks_are_next_tick_one_by_one_across_both_dst_days(expr: str, zone: str) -> None:
    s = schedule.parse(expr, zone)
    assert isinstance(s, schedule.Cron | schedule.Every)
    after = dt.datetime(2025, 3, 8, tzinfo=dt.UTC)  # New York springs forward on the 9th,
    until = dt.datetime(2025, 11, 3, tzinfo=dt.UTC)  # falls back on the 2nd; Zurich between
    if expr.count(" ") == 5:
        until = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
    one_walk = list(schedule.ticks(s, after, until))
    stepped, t = [], schedule.next_tick(s, after)
    while t <= until:
        stepped.append(t)
        t = schedule.next_tick(s, t)
    assert one_walk == stepped and len(one_walk) > 100
