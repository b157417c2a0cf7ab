"""Backfills in real databases (SQLite and PostgreSQL): accepted as one row and its first
runs, the rest created by the transactions that end runs, in logical-time order; what
reprocess does with ticks that have runs; cancel."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from orchestrator import errors
from orchestrator.model import backfill, spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.model.states import RunState
from orchestrator.store import Claim, RunStart, Store

pytestmark = pytest.mark.integration
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _dag(schedule: str = "@hourly") -> CompiledDag:
    return CompiledDag.of(spec.build({
        "id": f"bf_{uuid.uuid4().hex[:8]}", "schedule": schedule,
        "tasks": [{"id": "a", "kind": "shell", "command": "true"},
                  {"id": "b", "kind": "shell", "command": "true", "upstream": ["a"]}]}))


def _accept(store: Store, dag: CompiledDag, start: dt.datetime, end: dt.datetime, *,
            reprocess: str = "none", max_active: int = 2) -> tuple[str, list[str]]:
    s = backfill.timed(dag.spec.schedule, dag.spec.timezone, dag.id)
    win = backfill.window(s, start, end, max_runs=100_000)
    bf_id, change = store.create_backfill(dag, win, start=start, end=end,
                                          reprocess=reprocess, max_active=max_active)
    return bf_id, change.started_runs


def _finish_run(store: Store, dag: CompiledDag, run_id: str, *, fail: bool = False,
                ) -> list[str]:
    """Run its two tasks to their end; returns the runs the last transaction started."""
    started: list[str] = []
    for task in ("a", "b"):
        claim = store.claim(run_id, task, 1, worker="w", pid=1, lease_seconds=60,
                            data_from=[], max_lost=3)
        assert isinstance(claim, Claim)
        if fail:
            change = store.fail(run_id, task, 1, error_type="Boom", message="no",
                                traceback=None, retry_in=None, p=dag.plan, token=claim.token)
            return change.started_runs
        change = store.succeed(run_id, task, 1, None, dag.plan, token=claim.token)
        started += change.started_runs
    return started


def _times(store: Store, run_ids: list[str]) -> list[dt.datetime | None]:
    return [store.get_run(r, with_results=False).logical_time for r in run_ids]


def test_runs_are_created_as_earlier_ones_end_in_logical_time_order(store: Store) -> None:
    dag = _dag()
    bf_id, first = _accept(store, dag, T0, T0 + 5 * HOUR, max_active=2)
    assert _times(store, first) == [T0, T0 + HOUR]
    shown = store.backfill(bf_id)
    assert (shown.total, shown.handled, shown.state, shown.cursor) == (
        5, 2, "running", T0 + 2 * HOUR)
    made = list(first)
    todo = list(first)
    while todo:
        nxt = _finish_run(store, dag, todo.pop(0))
        assert len(nxt) <= 1  # one run ended, one slot freed
        made += nxt
        todo += nxt
    assert _times(store, made) == [T0 + i * HOUR for i in range(5)]
    done = store.backfill(bf_id)
    assert (done.state, done.handled, done.runs) == ("success", 5, {"success": 5})
    assert {store.get_run(r, with_results=False).trigger for r in made} == {"backfill"}
    run = store.get_run(made[2], with_results=False)
    assert (run.interval_start, run.interval_end, run.backfill_id) == (
        T0 + 2 * HOUR, T0 + 3 * HOUR, bf_id)


def test_a_year_of_hourly_runs_is_one_row_and_max_active_runs(store: Store) -> None:
    dag = _dag()
    before = store.count_rows()
    bf_id, first = _accept(store, dag, T0, T0 + dt.timedelta(days=365), max_active=3)
    after = store.count_rows()
    assert store.backfill(bf_id).total == 365 * 24
    assert len(first) == 3
    assert after["runs"] - before["runs"] == 3 and after["backfills"] - before["backfills"] == 1
    cancelled = store.cancel_backfill(bf_id)
    assert sorted(cancelled) == sorted(first)  # the caller cancels them
    for r in cancelled:
        assert _finish_run(store, dag, r) == []  # a cancelled backfill creates no more
    assert store.backfill(bf_id).state == "cancelled"
    with pytest.raises(errors.Conflict, match="already cancelled"):
        store.cancel_backfill(bf_id)
    with pytest.raises(errors.UnknownBackfill):
        store.cancel_backfill(uuid.uuid4().hex)


@pytest.mark.parametrize(("reprocess", "rerun"), [("none", set()), ("failed", {"failed"}),
                                                  ("all", {"failed", "success"})])
def test_reprocess_decides_what_a_tick_with_a_run_gets(store: Store, reprocess: str,
                                                       rerun: set[str]) -> None:
    dag = _dag()
    ok, bad = uuid.uuid4().hex, uuid.uuid4().hex
    for run_id, at in ((ok, T0), (bad, T0 + HOUR)):
        store.create_run(dag, run_id=run_id, params={},
                         start=RunStart(logical_time=at, interval_start=at,
                                        interval_end=at + HOUR))
    _finish_run(store, dag, ok)
    _finish_run(store, dag, bad, fail=True)
    assert store.run_state(bad) == RunState.FAILED
    bf_id, started = _accept(store, dag, T0, T0 + 3 * HOUR, reprocess=reprocess,
                             max_active=3)
    again = {"success": ok, "failed": bad}
    assert set(started) == {again[k] for k in rerun} | (set(started) - {ok, bad})
    assert len(set(started) - {ok, bad}) == 1  # the tick without a run gets a new one
    for k, run_id in again.items():
        state = store.run_state(run_id)
        assert (state == RunState.RUNNING) == (k in rerun), (k, state)
        assert (store.get_run(run_id, with_results=False).backfill_id == bf_id) == (k in rerun)
    assert store.backfill(bf_id).handled == 3


def test_bad_windows_are_refused(store: Store) -> None:
    s = backfill.timed("@hourly", "UTC", "x")
    with pytest.raises(errors.InvalidArgument, match="must be after"):
        backfill.window(s, T0, T0, max_runs=10)
    with pytest.raises(errors.InvalidArgument, match="ORCH_MAX_BACKFILL_RUNS"):
        backfill.window(s, T0, T0 + 11 * HOUR, max_runs=10)
    with pytest.raises(errors.InvalidArgument, match="no time schedule"):
        backfill.timed({"event": "e"}, "UTC", "x")
    assert backfill.window(s, T0, T0 + HOUR, max_runs=10) == backfill.Window(1, T0, T0)
