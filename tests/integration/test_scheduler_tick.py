"""The coordinator's scheduler loop (``Scheduler.tick``) over simulated time: it registers
the DAG folder when it changed, fires what the database says is due by its injected
clock, and sends the first tasks of the runs it created (not those waiting for a run
slot). Each test has a database of its own and a broker queue nobody consumes, so the
messages the scheduler sent can be counted. The store's firing rules themselves are in
test_schedules_store.py; here they are seen through the loop a coordinator runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from orchestrator import errors
from orchestrator.coordinator.scheduler import Scheduler
from orchestrator.model import schedule
from orchestrator.model.states import RunState, TaskState
from orchestrator.settings import Settings
from orchestrator.store import Claim, Store
from orchestrator.store.tables import dags, runs
from orchestrator.wiring import Wiring
from tests import recording_hooks
from tests.support import free_port, make_settings

pytestmark = pytest.mark.integration
MINUTE = dt.timedelta(minutes=1)
HOOK = "tests.recording_hooks:Recorder"


class Clock:
    """The scheduler's injected clock: simulated epoch seconds the test sets."""

    def __init__(self) -> None:
        self.now = time.time()  # before registration: nothing is due yet

    def __call__(self) -> float:
        return self.now

    def at(self, when: dt.datetime) -> None:
        self.now = when.timestamp()


class Env:
    """A DAG folder, a database and a queue of the test's own, and a scheduler on them."""

    def __init__(self, settings: Settings, broker: redis.Redis) -> None:
        self.settings = settings
        self.folder = settings.dags.path
        self.broker = broker
        self.clock = Clock()
        self._wirings: list[Wiring] = []
        self.wiring = self.wire()
        self.store = self.wiring.store
        self.scheduler = self.scheduler_of(self.wiring)

    def wire(self, settings: Settings | None = None) -> Wiring:
        wiring = Wiring(settings or self.settings)
        self._wirings.append(wiring)
        return wiring

    def scheduler_of(self, wiring: Wiring) -> Scheduler:
        return Scheduler(wiring.settings, wiring.outcomes, bag=lambda: wiring.bag,
                         clock=self.clock)

    def close(self) -> None:
        for wiring in self._wirings:
            wiring.close()

    def dag(self, dag_id: str, expr: str, **options: Any) -> None:
        """Write (or rewrite) a YAML DAG of one shell task."""
        lines = [f"id: {dag_id}", f"schedule: '{expr}'",
                 *(f"{k}: {v}" for k, v in options.items()),
                 "tasks:", "  - id: a", "    shell: 'true'"]
        (self.folder / f"{dag_id}.yaml").write_text("\n".join(lines) + "\n")

    def row(self, dag_id: str) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(dags).where(dags.c.dag_id == dag_id)).one()

    def runs(self, dag_id: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(sa.select(runs).where(runs.c.dag_id == dag_id)
                                     .order_by(runs.c.logical_time)))

    def times(self, dag_id: str, state: RunState | None = None) -> list[dt.datetime]:
        return [r.logical_time for r in self.runs(dag_id) if state in (None, r.state)]

    def sent(self) -> list[str]:
        """The run ids of the messages in the queue, oldest first."""
        queue = self.settings.worker.default_queue
        return [_run_of(m) for m in reversed(self.broker.lrange(queue, 0, -1))]

    def finish(self, run_id: str) -> list[str]:
        """Run the run's task to success as a worker does (claim, succeed, then send what
        that transaction started); returns the runs it started."""
        dag = self.store.compiled(self.store.header(run_id).version or "")
        claim = self.store.claim(run_id, "a", 1, worker="w", pid=1, lease_seconds=60,
                                 data_from=[], max_lost=3)
        assert isinstance(claim, Claim)
        change = self.store.succeed(run_id, "a", 1, None, dag.plan, token=claim.token)
        self.wiring.outcomes.apply(dag, change)
        return change.started_runs


def _hooks(run_id: str) -> list[tuple[str, str | None]]:
    """The hooks called for the run: (hook, task) in order, by any process."""
    return [(e["hook"], e.get("task_id")) for e in recording_hooks.events(run_id)]


def _run_of(message: bytes | str) -> str:
    body = json.loads(message)
    args, kwargs, _ = json.loads(base64.b64decode(body["body"]))
    found = kwargs.get("run", kwargs.get("run_id"))
    assert isinstance(found, str), (args, kwargs)
    return found


@pytest.fixture
def env(broker_url: str, fresh_url: str, ledger_dir: Path, tmp_path: Path) -> Iterator[Env]:
    (tmp_path / "dags").mkdir()
    settings = make_settings(broker_url, fresh_url, dags_path=tmp_path / "dags",
                             schedule_misfire_grace=90, hooks=HOOK)
    store = Store(fresh_url)
    store.upgrade()
    store.dispose()
    broker = redis.Redis.from_url(broker_url)
    e = Env(settings, broker)
    yield e
    e.close()
    broker.delete(settings.worker.default_queue)
    broker.close()


def _first(e: Env, dag_id: str) -> dt.datetime:
    """Register on a first pass before anything is due; returns the DAG's first fire."""
    before = dt.datetime.now(dt.UTC)
    assert e.scheduler.tick() == 0
    after = dt.datetime.now(dt.UTC)
    nf = e.row(dag_id).next_fire
    s = schedule.parse(e.row(dag_id).schedule["value"])
    assert isinstance(s, schedule.Every | schedule.Cron)
    # a new schedule fires first at its next tick after the moment it is registered
    assert schedule.next_tick(s, before) <= nf <= schedule.next_tick(s, after)
    return nf  # type: ignore[no-any-return]


def test_each_due_tick_gets_one_run_and_its_first_task_is_sent(env: Env) -> None:
    env.dag("all", "every 1m", catchup="all")
    first = _first(env, "all")
    assert env.runs("all") == [] and env.sent() == []
    env.clock.at(first + 3 * MINUTE + dt.timedelta(seconds=30))
    assert env.scheduler.tick() == 4
    made = env.runs("all")
    assert [r.logical_time for r in made] == [first + i * MINUTE for i in range(4)]
    assert all((r.trigger, r.state, r.interval_end - r.interval_start)
               == ("schedule", RunState.RUNNING, MINUTE) for r in made)
    assert env.sent() == [r.id for r in made]  # in logical-time order
    for r in made:
        assert env.store.get_run(r.id).tasks["a"].state == TaskState.QUEUED
        assert _hooks(r.id) == [("run_started", None), ("task_queued", "a")]
    row = env.row("all")
    assert (row.next_fire, row.last_fire, row.skipped) == (first + 4 * MINUTE,
                                                           first + 3 * MINUTE, 0)
    # the same moment again, and later before the next tick: nothing more
    assert env.scheduler.tick() == 0
    env.clock.at(first + 3 * MINUTE + dt.timedelta(seconds=59.999))
    assert env.scheduler.tick() == 0
    env.clock.at(first + 4 * MINUTE)  # exactly on the tick: it is due
    assert env.scheduler.tick() == 1
    assert len(env.runs("all")) == 5 and len(env.sent()) == 5


def test_catchup_latest_and_none_through_the_loop(env: Env) -> None:
    env.dag("latest", "every 1m", catchup="latest")
    env.dag("none", "every 1m", catchup="none")
    env.dag("capped", "every 1m", catchup="all", max_catchup=2)
    first = _first(env, "latest")
    assert env.row("none").next_fire == env.row("capped").next_fire == first
    now = first + 4 * MINUTE + dt.timedelta(seconds=10)
    env.clock.at(now)  # ticks first .. first+4m are due; the grace is 90 s
    assert env.scheduler.tick() == 1 + 2 + 2
    assert env.times("latest") == [first + 4 * MINUTE]
    assert env.times("none") == [first + 3 * MINUTE, first + 4 * MINUTE]
    assert env.times("capped") == [first + 3 * MINUTE, first + 4 * MINUTE]
    assert [env.row(d).skipped for d in ("latest", "none", "capped")] == [4, 3, 3]
    assert all(env.row(d).next_fire == first + 5 * MINUTE
               for d in ("latest", "none", "capped"))
    assert len(env.sent()) == 5


def test_a_paused_dag_gets_nothing_and_catches_up_when_unpaused(env: Env) -> None:
    env.dag("paused", "every 1m", catchup="all")
    first = _first(env, "paused")
    env.store.set_paused("paused", True)
    env.clock.at(first + 2 * MINUTE + dt.timedelta(seconds=1))
    assert env.scheduler.tick() == 0
    env.clock.at(first + 3 * MINUTE + dt.timedelta(seconds=1))
    assert env.scheduler.tick() == 0
    assert env.runs("paused") == [] and env.sent() == []
    assert env.row("paused").next_fire == first  # the missed ticks follow catchup
    env.store.set_paused("paused", False)
    assert env.scheduler.tick() == 4
    assert env.times("paused") == [first + i * MINUTE for i in range(4)]
    assert len(env.sent()) == 4


def test_overlap_skip_fires_up_to_max_active_runs(env: Env) -> None:
    env.dag("skip", "every 1m", catchup="all", max_active_runs=2)
    first = _first(env, "skip")
    env.clock.at(first + 3 * MINUTE + dt.timedelta(seconds=30))
    assert env.scheduler.tick() == 2
    assert env.times("skip") == [first, first + MINUTE]
    assert env.row("skip").skipped == 2 and env.row("skip").next_fire == first + 4 * MINUTE
    assert len(env.sent()) == 2
    env.finish(env.runs("skip")[0].id)  # a slot frees: the next tick fits, no earlier one
    env.clock.at(first + 4 * MINUTE)
    assert env.scheduler.tick() == 1
    assert env.times("skip") == [first, first + MINUTE, first + 4 * MINUTE]
    assert env.row("skip").skipped == 2 and len(env.sent()) == 3


def test_overlap_queue_sends_queued_runs_in_logical_time_order_as_runs_end(env: Env) -> None:
    env.dag("queue", "every 1m", catchup="all", max_active_runs=1, overlap="queue")
    first = _first(env, "queue")
    env.clock.at(first + 2 * MINUTE + dt.timedelta(seconds=30))
    assert env.scheduler.tick() == 3
    made = env.runs("queue")
    assert [r.state for r in made] == [RunState.RUNNING, RunState.QUEUED, RunState.QUEUED]
    assert env.sent() == [made[0].id]  # the queued ones wait for a slot, unsent
    assert [_hooks(r.id) for r in made] == [[("run_started", None), ("task_queued", "a")],
                                            [], []]  # not started yet
    env.clock.at(first + 3 * MINUTE)
    assert env.scheduler.tick() == 1  # queued too: the slot is still taken
    made = env.runs("queue")
    assert [r.state for r in made][1:] == [RunState.QUEUED] * 3
    order = [made[0].id]
    while True:
        running = [r.id for r in env.runs("queue") if r.state == RunState.RUNNING]
        assert running == [order[-1]]  # one at a time
        started = env.finish(running[0])
        if not started:
            break
        order += started
        assert env.sent() == order  # the transaction that ended a run sent the next
    assert order == [r.id for r in made]  # by logical time
    for r in made:  # each started once, by the scheduler or the run that ended before it
        seen = _hooks(r.id)
        assert seen[0] == ("run_started", None) and seen.count(seen[0]) == 1
    assert env.row("queue").skipped == 0
    assert env.scheduler.tick() == 0  # nothing is fired twice


def test_a_second_scheduler_at_the_same_moment_creates_nothing_more(env: Env) -> None:
    env.dag("pair", "every 1m", catchup="all")
    env.dag("pair_cron", "*/20 * * * * *", catchup="all")
    first = _first(env, "pair")
    cron_first = env.row("pair_cron").next_fire
    other = env.scheduler_of(env.wire())  # another coordinator: its own engine and bag
    assert other.tick() == 0  # registering again keeps the next fires
    assert (env.row("pair").next_fire, env.row("pair_cron").next_fire) == (first,
                                                                           cron_first)
    now = first + MINUTE + dt.timedelta(seconds=1)
    env.clock.at(now)
    count = env.scheduler.tick()
    assert count == len(_ticks("every 1m", first, now)) + len(
        _ticks("*/20 * * * * *", cron_first, now))
    assert other.tick() == 0
    # then in turns, each moment seen by both, in either order
    for i, step in enumerate(range(7, 300, 13)):
        now = first + MINUTE + dt.timedelta(seconds=step)
        env.clock.at(now)
        a, b = (env.scheduler, other) if i % 2 else (other, env.scheduler)
        count += a.tick()
        assert b.tick() == 0
    assert env.times("pair") == _ticks("every 1m", first, now)
    assert env.times("pair_cron") == _ticks("*/20 * * * * *", cron_first, now)
    assert count == len(env.runs("pair")) + len(env.runs("pair_cron")) == len(env.sent())


def _ticks(expr: str, first: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """A schedule's ticks from ``first`` (itself one) to ``until``."""
    s = schedule.parse(expr)
    assert isinstance(s, schedule.Every | schedule.Cron)
    return [t for t in [first, *schedule.ticks(s, first, until)] if t <= until]


def test_the_folder_is_registered_again_only_when_a_file_changed(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.dag("changing", "every 1h", catchup="all")
    _first(env, "changing")
    before = env.row("changing")
    real = env.store.register_dags
    registered: list[list[str]] = []

    def spy(dags: Any, **kw: Any) -> None:
        registered.append(sorted(d.id for d in dags))
        real(dags, **kw)

    monkeypatch.setattr(env.store, "register_dags", spy)
    for _ in range(3):
        env.scheduler.tick()
    assert registered == []  # nothing changed: no registration, nothing written
    assert env.row("changing").updated_at == before.updated_at
    env.dag("changing", "every 1m", catchup="all")  # the schedule changes
    env.dag("added", "every 1m", catchup="all")  # and a DAG appears
    # registering reads the scheduler's clock: the new first fire is after its now
    env.clock.at(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    changed_at = dt.datetime.fromtimestamp(env.clock(), dt.UTC)
    assert env.scheduler.tick() == 0
    assert registered == [["added", "changing"]]
    row = env.row("changing")
    assert row.schedule["value"] == "every 1m" and row.version != before.version
    assert row.next_fire == env.row("added").next_fire
    assert changed_at < row.next_fire <= changed_at + MINUTE  # from the change, not 1h
    env.clock.at(row.next_fire + MINUTE)
    assert env.scheduler.tick() == 4
    assert env.times("changing") == env.times("added") == [row.next_fire,
                                                           row.next_fire + MINUTE]


def test_a_registration_that_failed_is_tried_again_at_the_next_pass(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.dag("late", "every 1h", catchup="all")
    _first(env, "late")
    env.dag("late", "every 1m", catchup="all")
    env.dag("new", "every 1m", catchup="all")
    real = env.store.register_dags
    calls: list[int] = []

    def flaky(dags: Any, **kw: Any) -> None:
        calls.append(len(dags))
        if len(calls) == 1:
            raise errors.StoreError("the database went away for a moment")
        real(dags, **kw)

    monkeypatch.setattr(env.store, "register_dags", flaky)
    with pytest.raises(errors.StoreError):
        env.scheduler.tick()  # the coordinator logs a failed pass and tries again
    env.scheduler.tick()
    assert calls == [2, 2]
    assert env.row("late").schedule["value"] == "every 1m"
    assert env.row("new").next_fire is not None


def test_runs_are_created_when_the_broker_cannot_be_reached(env: Env) -> None:
    env.dag("nobroker", "every 1m", catchup="all")
    first = _first(env, "nobroker")
    gone = env.settings.with_env(ORCH_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    offline = env.scheduler_of(env.wire(gone))
    env.clock.at(first + MINUTE)
    assert offline.tick() == 2  # created; their tasks are left for the next pass to send
    made = env.runs("nobroker")
    assert [r.logical_time for r in made] == [first, first + MINUTE]
    assert env.sent() == []
    for r in made:
        assert env.store.get_run(r.id).tasks["a"].state == TaskState.QUEUED
    assert offline.tick() == 0 and env.scheduler.tick() == 0  # not fired again
