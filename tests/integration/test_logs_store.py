"""The log store and the worker's capture against real databases (SQLite and PostgreSQL),
without workers: chunks are accepted only while their attempt runs, a lost attempt's log
ends with the marker (takeover and give-up alike), reads page by sequence number, and a
quiet body writes nothing and wakes nothing."""

from __future__ import annotations

import uuid

import pytest

from orchestrator import errors
from orchestrator.model.records import LOST_WORKER_MARKER
from orchestrator.model.states import AttemptOutcome
from orchestrator.store import Claim, GiveUp, Store
from tests.support import compiled_of, make_settings
from workers.log_capture import LogCapture

pytestmark = pytest.mark.integration
DAG = compiled_of({"a": []}, dag_id="logs_store")


def _running(store: Store, lease_seconds: float = 60.0) -> tuple[str, Claim]:
    run_id = uuid.uuid4().hex
    store.create_run(DAG, run_id=run_id, params={})
    claim = store.claim(run_id, "a", 1, worker="w1", pid=1, lease_seconds=lease_seconds,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    return run_id, claim


def _texts(store: Store, run_id: str, attempt: int | None = None) -> list[str]:
    return [c.data for c in store.read_logs(run_id, "a", attempt)[1]]


def test_chunks_of_a_running_attempt_only(store: Store) -> None:
    run_id, claim = _running(store)
    assert store.append_log(run_id, "a", 1, 1, "one\n")
    assert not store.append_log(run_id, "a", 1, 1, "the same seq again\n")
    assert not store.append_log(run_id, "a", 2, 1, "an attempt that does not exist\n")
    assert not store.append_log(uuid.uuid4().hex, "a", 1, 1, "no such run\n")
    assert store.append_log(run_id, "a", 1, 2, "nul \x00 and lone \udcff surrogate\n")
    store.succeed(run_id, "a", 1, "ok", DAG.plan, token=claim.token)
    assert not store.append_log(run_id, "a", 1, 3, "after the outcome\n")
    assert _texts(store, run_id) == ["one\n", "nul \\x00 and lone \\udcff surrogate\n"]


def test_a_taken_over_attempt_ends_with_the_marker_and_refuses_late_chunks(
        store: Store) -> None:
    run_id, _ = _running(store, lease_seconds=-1.0)  # a lease that has already run out
    assert store.append_log(run_id, "a", 1, 1, "flushed before the loss\n")
    taken = store.claim(run_id, "a", 1, worker="w2", pid=2, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(taken, Claim) and taken.took_over == 1
    assert not store.append_log(run_id, "a", 1, 2, "a partitioned worker, late\n")
    assert not store.append_log(run_id, "a", 1, 3, "and later still\n")
    assert _texts(store, run_id, 1) == ["flushed before the loss\n", LOST_WORKER_MARKER]
    assert store.attempt_outcome(run_id, "a", 1) == (1, AttemptOutcome.LOST)
    assert store.read_logs(run_id, "a") == (2, [])  # the new attempt's own stream


def test_a_lost_attempt_given_up_ends_with_the_marker(store: Store) -> None:
    run_id, _ = _running(store, lease_seconds=-1.0)
    assert store.append_log(run_id, "a", 1, 1, "last words\n")
    gave_up = store.claim(run_id, "a", 1, worker="w2", pid=2, lease_seconds=60,
                          data_from=[], max_lost=1)
    assert isinstance(gave_up, GiveUp)
    store.fail(run_id, "a", gave_up.attempt, error_type=gave_up.error_type,
               message=gave_up.message, traceback=None, retry_in=None, p=DAG.plan,
               worker_lost=True)
    assert _texts(store, run_id) == ["last words\n", LOST_WORKER_MARKER]


def test_a_failure_of_a_live_worker_has_no_marker(store: Store) -> None:
    run_id, claim = _running(store)
    store.fail(run_id, "a", 1, error_type="ValueError", message="no", traceback=None,
               retry_in=None, p=DAG.plan, token=claim.token)
    assert _texts(store, run_id) == []


def test_reads_page_by_sequence_number(store: Store) -> None:
    run_id, _ = _running(store)
    for seq in range(1, 8):
        assert store.append_log(run_id, "a", 1, seq, f"chunk {seq}\n")
    number, first = store.read_logs(run_id, "a", after=0, limit=3)
    assert number == 1 and [c.seq for c in first] == [1, 2, 3]
    _, rest = store.read_logs(run_id, "a", 1, after=3, limit=1000)
    assert [c.seq for c in rest] == [4, 5, 6, 7]
    assert store.read_logs(run_id, "a", 1, after=7) == (1, [])
    for bad in ({"after": -1}, {"limit": 0}, {"limit": 10_001}):
        with pytest.raises(errors.InvalidArgument):
            store.read_logs(run_id, "a", **bad)
    with pytest.raises(errors.InvalidArgument):
        store.read_logs(run_id, "a", 0)


def test_a_task_that_has_not_started_has_no_attempt(store: Store) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(DAG, run_id=run_id, params={})
    with pytest.raises(errors.UnknownAttempt, match="no attempt yet"):
        store.read_logs(run_id, "a")


def test_the_capture_of_a_quiet_body_writes_and_wakes_nothing(store: Store,
                                                              database_url: str) -> None:
    run_id, _ = _running(store)
    capture = LogCapture(store, make_settings("redis://127.0.0.1:1/0", database_url))
    before = store.count_rows()
    for _ in range(50):
        with capture.attempt(run_id, "a", 1):
            pass
    assert capture._thread is None  # no flusher thread was ever started
    assert store.read_logs(run_id, "a") == (1, [])
    assert store.count_rows() == before
    with capture.attempt(run_id, "a", 1):
        print("one line")
    assert capture._thread is not None
    assert _texts(store, run_id) == ["one line\n"]


def test_the_capture_stops_writing_once_the_attempt_ended_elsewhere(
        store: Store, database_url: str) -> None:
    run_id, _ = _running(store, lease_seconds=-1.0)
    capture = LogCapture(store, make_settings("redis://127.0.0.1:1/0", database_url))
    with capture.attempt(run_id, "a", 1) as target:
        print("before the takeover")
        capture._flush(target, final=False)
        taken = store.claim(run_id, "a", 1, worker="w2", pid=2, lease_seconds=60,
                            data_from=[], max_lost=3)
        assert isinstance(taken, Claim)
        print("after the takeover: refused, and no error")
    assert target.closed
    assert _texts(store, run_id, 1) == ["before the takeover\n", LOST_WORKER_MARKER]
