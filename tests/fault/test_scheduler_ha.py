"""Several coordinators schedule without a duplicate or a missed tick, while being killed.

Three coordinator processes (tests/fault/sim_coordinator.py) run the scheduler's passes
over simulated time: the test owns the clock (a file holding epoch seconds, read by
every child before each pass) and moves it on step by step over 60 simulated seconds,
SIGKILLing a coordinator at random moments (and once all of them, for a few simulated
seconds) and starting another. Twenty DAGs have second-level schedules, ``catchup: all``
and no run limit, so every tick must get exactly one run. After each step the test waits
until every DAG's next fire, in the database, has passed the simulated now; at the end
each DAG's runs are compared with its ticks, computed here from the schedule alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from orchestrator.devstack.processes import spawn
from orchestrator.model import schedule
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.store.tables import dags, runs
from tests.support import ROOT, alive, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COORDINATORS = 3
SIMULATED_S = 60.0
STEP_WAIT_S = 45.0
"""Bound on one step: a replacement coordinator starting on a busy machine, then a pass."""
SCHEDULES: list[tuple[str, str]] = [
    ("every 1s", "UTC"), ("every 2s", "UTC"), ("every 3s", "UTC"), ("every 5s", "UTC"),
    ("every 7s", "UTC"), ("every 1.5s", "UTC"), ("every 2.5s", "UTC"),
    ("every 11s", "UTC"), ("every 1m", "UTC"),
    ("* * * * * *", "UTC"), ("*/2 * * * * *", "UTC"), ("*/3 * * * * *", "UTC"),
    ("*/4 * * * * *", "UTC"), ("*/5 * * * * *", "UTC"), ("*/10 * * * * *", "UTC"),
    ("1-59/2 * * * * *", "UTC"), ("7,19,31,43,55 * * * * *", "UTC"),
    ("*/6 * * * * *", "Europe/Zurich"), ("0,15,30,45 * * * * *", "America/New_York"),
    ("* * * * *", "UTC"),
]


def _write_dags(folder: Path) -> dict[str, schedule.Cron | schedule.Every]:
    """One YAML DAG per schedule; returns each DAG's parsed schedule by id."""
    folder.mkdir()
    out: dict[str, schedule.Cron | schedule.Every] = {}
    for i, (expr, zone) in enumerate(SCHEDULES):
        dag_id = f"ha_{i:02d}"
        (folder / f"{dag_id}.yaml").write_text(
            f"id: {dag_id}\nschedule: '{expr}'\ntimezone: {zone}\ncatchup: all\n"
            "max_catchup: 10000\ntasks:\n  - id: a\n    shell: 'true'\n")
        parsed = schedule.parse(expr, zone)
        assert isinstance(parsed, schedule.Cron | schedule.Every)
        out[dag_id] = parsed
    return out


class SimulatedClock:
    """The simulated now, in the file every coordinator reads before a pass."""

    def __init__(self, path: Path, start: float) -> None:
        self.path = path
        self.set(start)

    def set(self, now: float) -> None:
        self.now = now
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(now))
        os.replace(tmp, self.path)  # a reader sees the old time or the new, never half

    @property
    def utc(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now, dt.UTC)  # as Scheduler.tick converts it


class Coordinators:
    """The coordinator processes of the test, started and stopped (by PID) here."""

    def __init__(self, settings: Settings, clock: Path, log_dir: Path) -> None:
        self.settings = settings
        self.clock = clock
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.killed = 0

    def start(self) -> subprocess.Popen[bytes]:
        proc = spawn(["tests.fault.sim_coordinator", str(self.clock)], self.settings,
                     log_path=str(self.log_dir / f"coordinator-{self.started}.log"),
                     extra_env={"PYTHONPATH": str(ROOT)})
        self.started += 1
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.procs.remove(proc)
        self.killed += 1

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        assert not [p.pid for p in self.procs if alive(p.pid)]
        self.procs.clear()

    def logs(self) -> str:
        return "".join(f.read_text(errors="replace")
                       for f in sorted(self.log_dir.glob("coordinator-*.log")))


@pytest.fixture
def ha_store(fresh_url: str) -> Iterator[Store]:
    store = Store(fresh_url)
    store.upgrade()
    yield store
    store.dispose()


def _next_fires(store: Store) -> dict[str, dt.datetime | None]:
    with store.engine.connect() as conn:
        return {r.dag_id: r.next_fire for r in conn.execute(
            sa.select(dags.c.dag_id, dags.c.next_fire))}


def _all_past(store: Store, expected: int, now: dt.datetime) -> bool:
    fires = _next_fires(store)
    return len(fires) == expected and all(f is not None and f > now for f in fires.values())


def _step(rng: random.Random) -> float:
    """0.5 to 2 simulated seconds: often a multiple of 0.25 (so passes land exactly on
    ticks), sometimes any millisecond."""
    if rng.random() < 0.7:
        return rng.choice([0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
    return round(rng.uniform(0.5, 2.0), 3)


def test_three_coordinators_killed_at_random_fire_every_tick_once(
        broker_url: str, fresh_url: str, ha_store: Store, tmp_path: Path) -> None:
    seed = int(os.environ.get("ORCH_TEST_SEED", random.randrange(2**32)))
    print(f"scheduler HA seed {seed} (ORCH_TEST_SEED={seed} reproduces the choices)")
    schedules = _write_dags(tmp_path / "dags")
    settings = make_settings(broker_url, fresh_url, dags_path=tmp_path / "dags",
                             schedule_interval=0.05)
    clock = SimulatedClock(tmp_path / "clock", float(math.floor(time.time())))
    group = Coordinators(settings, clock.path, tmp_path)
    try:
        first, random_kills = _simulate(random.Random(seed), ha_store, schedules, clock,
                                        group, f"seed {seed}")
        group.stop_all()
    finally:
        for proc in group.procs:  # a failed step: nothing is left running
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        _drop_queue(broker_url, settings.worker.default_queue)

    made = _check_runs(ha_store, schedules, first, clock.utc, f"seed {seed}")
    # the test did what it says: coordinators were killed, and more than one fired runs
    logs = group.logs()
    firing = set(re.findall(r"^\S+ \S+ (\d+) INFO fired \d+ runs$", logs, re.M))
    print(f"{made} runs; {random_kills} coordinators killed at random, then all "
          f"{COORDINATORS} at once; {len(firing)} of {group.started} fired some")
    assert random_kills >= 1 and len(firing) >= 2, f"seed {seed}"
    assert "scheduler pass failed" not in logs, f"seed {seed}"


def _simulate(rng: random.Random, store: Store, schedules: dict[str, schedule.Cron |
              schedule.Every], clock: SimulatedClock, group: Coordinators,
              seed: str) -> tuple[dict[str, dt.datetime], int]:
    """Start the coordinators, let them register the DAGs, then move simulated time on
    with kills at random; returns each DAG's first next fire and the random kills."""
    # the coordinators register on the simulated clock, which was set before this moment
    # (by as long as setting the test up took: over a tick on a loaded CI machine)
    before = min(dt.datetime.now(dt.UTC), clock.utc)
    for _ in range(COORDINATORS):
        group.start()
    # the simulated clock stands still until the coordinators have registered the DAGs
    wait_until(lambda: _all_past(store, len(schedules), clock.utc), timeout=STEP_WAIT_S,
               what=f"the {len(schedules)} DAGs to be registered ({seed})")
    after = dt.datetime.now(dt.UTC)
    first: dict[str, dt.datetime] = {}
    for dag_id, nf in _next_fires(store).items():
        assert nf is not None  # a new schedule fires first at its next tick after now
        s = schedules[dag_id]
        assert schedule.next_tick(s, before) <= nf <= schedule.next_tick(s, after)
        first[dag_id] = nf
    assert store.count_rows()["runs"] == 0  # nothing was due before time moved

    start = clock.now
    blackout_at: float | None = start + rng.uniform(10.0, SIMULATED_S - 10.0)
    random_kills = 0
    while clock.now < start + SIMULATED_S:
        if blackout_at is not None and clock.now + 2.0 >= blackout_at:
            blackout_at = None
            for proc in list(group.procs):  # nobody fires for a few simulated seconds
                group.kill(proc)
            clock.set(clock.now + rng.uniform(3.0, 6.0))
            for _ in range(COORDINATORS):
                group.start()
        else:
            clock.set(clock.now + _step(rng))
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.0, 0.05))  # the kill lands mid-pass, or not
                group.kill(rng.choice(group.procs))
                group.start()
                random_kills += 1
        now = clock.utc
        wait_until(functools.partial(_all_past, store, len(schedules), now),
                   timeout=STEP_WAIT_S, what=f"every next fire past {now.isoformat()} ({seed})")
    return first, random_kills


def _check_runs(store: Store, schedules: dict[str, schedule.Cron | schedule.Every],
                first: dict[str, dt.datetime], final: dt.datetime, seed: str) -> int:
    """Each DAG has one run per tick from its first fire to ``final``, and no other;
    returns how many runs there are."""
    with store.engine.connect() as conn:
        made = list(conn.execute(sa.select(
            runs.c.dag_id, runs.c.logical_time, runs.c.trigger, runs.c.interval_start,
            runs.c.interval_end)))
        rows = {r.dag_id: r for r in conn.execute(sa.select(dags))}
        doubled = list(conn.execute(
            sa.select(runs.c.dag_id, runs.c.logical_time, sa.func.count())
            .group_by(runs.c.dag_id, runs.c.logical_time).having(sa.func.count() > 1)))
    assert not doubled, (f"{len(doubled)} ticks with duplicate runs ({seed}), e.g. "
                         f"{[(d, t.isoformat(), n) for d, t, n in doubled[:5]]}")
    assert max(Counter((r.dag_id, r.logical_time) for r in made).values()) == 1, seed
    assert {r.trigger for r in made} == {"schedule"}
    missed: dict[str, list[str]] = {}
    extra: dict[str, list[str]] = {}
    for dag_id, s in schedules.items():
        nf = first[dag_id]
        expected = {t for t in [nf, *schedule.ticks(s, nf, final)] if t <= final}
        got = {r.logical_time for r in made if r.dag_id == dag_id}
        if expected - got:
            missed[dag_id] = [t.isoformat() for t in sorted(expected - got)]
        if got - expected:
            extra[dag_id] = [t.isoformat() for t in sorted(got - expected)]
    assert missed == {}, f"missed ticks ({seed})"
    assert extra == {}, f"runs at no tick ({seed})"
    for dag_id, s in schedules.items():  # the rows agree: next fire, last fire, skipped
        row = rows[dag_id]
        ticked = [first[dag_id], *schedule.ticks(s, first[dag_id], final)]
        assert (row.next_fire, row.skipped) == (schedule.next_tick(s, final), 0), dag_id
        assert row.last_fire == max((t for t in ticked if t <= final), default=None), dag_id
    for r in made:
        assert (r.interval_start, r.interval_end) == schedule.interval(
            schedules[r.dag_id], r.logical_time)
    return len(made)


def _drop_queue(broker_url: str, queue: str) -> None:
    """The messages the coordinators sent (nobody consumes this test's queue)."""
    r: Any = redis.Redis.from_url(broker_url)
    try:
        keys = list(r.scan_iter(match=f"{queue}*"))
        if keys:
            r.delete(*keys)
    finally:
        r.close()
