"""``Dag.test`` when tasks fail: retries and their attempts, timeouts, the trigger rules
that run after a failure, and the exception raised once the run is over."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator import context, dag, errors, task
from orchestrator.execution import local
from orchestrator.model import spec
from orchestrator.model.states import RunState, TaskState
from tests.support import alive, wait_until

SEEN: list[Any] = []
RELEASE = threading.Event()
"""Lets a body the deadline abandoned go on (set after each test)."""


@pytest.fixture(autouse=True)
def _clean() -> Any:
    global RELEASE
    SEEN.clear()
    RELEASE = threading.Event()  # one per test: an interrupted wait may leave it odd
    yield
    RELEASE.set()


class Flaky(ConnectionError):
    pass


class NotWorthRetrying(RuntimeError):
    retryable = False


@task(retries=2, retry_backoff=0.5, retry_jitter=False)
def flaky(succeed_at: int = 3) -> str:
    SEEN.append(context().attempt)
    if context().attempt < succeed_at:
        raise Flaky(f"attempt {context().attempt} failed")
    return "ok"


@task(retries=3, retry_backoff=2.0)
def jittery() -> None:
    raise ValueError("always")


@task(retries=3)
def hopeless() -> None:
    SEEN.append("hopeless")
    raise NotWorthRetrying("a 404 stays a 404")


@task(retries=2, retry_backoff=0.05, retry_jitter=False)
def timed_flaky() -> str:
    SEEN.append(time.monotonic())
    if context().attempt < 2:
        raise Flaky("once")
    return "ok"


@task
def boom() -> int:
    SEEN.append("boom")
    raise ValueError("boom failed")


@task
def fine() -> int:
    SEEN.append("fine")
    return 1


@task
def echo(value: Any = None) -> Any:
    SEEN.append(context().task_id)
    return value


@task(timeout=1.0, retries=1, retry_backoff=0.0)  # the retry returns at once
def slow_once() -> str:
    if context().attempt == 1:
        RELEASE.wait(60)  # blocks until the test is over; abandoned at the deadline
        SEEN.append("late")  # never reached: the TaskTimeout comes first
    return f"attempt {context().attempt}"


@task(timeout=0.2)
def spins() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a busy loop: stopped at the deadline
        pass
    SEEN.append("spun out")


@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task(retries=1, retry_backoff=0.0)
def fragile(x: int) -> int:
    if x == 1:
        raise KeyError(f"item {x}")
    return x * 10


@task
def not_a_list() -> int:
    return 7


@task(branch=True, retries=1, retry_backoff=0.0)
def bad_branch() -> str:
    return "nowhere"


def _id() -> str:
    return f"f_{uuid.uuid4().hex[:8]}"


def test_a_flaky_task_is_retried_and_its_attempts_are_reported() -> None:
    @dag(id=_id())
    def d() -> None:
        echo(flaky())

    run = d.test()
    assert run == {"flaky": "ok", "echo": "ok"}
    assert SEEN == [1, 2, 3, "echo"]
    tries = run.attempts["flaky"]
    assert len(tries) == 3
    assert [a.number for a in tries] == [1, 2, 3]
    assert [a.outcome for a in tries] == ["failed", "failed", "success"]
    assert [a.error_type for a in tries] == ["Flaky", "Flaky", None]
    assert tries[0].message == "attempt 1 failed"
    assert isinstance(tries[0].exception, Flaky)
    # what a worker would have waited: backoff, doubled, never after the last attempt
    assert [a.retry_delay for a in tries] == [0.5, 1.0, None]
    assert run.states == {"flaky": TaskState.SUCCESS, "echo": TaskState.SUCCESS}
    assert run.failed == [] and run.error is None and run.state == RunState.SUCCESS


def test_retries_run_out_and_the_last_exception_is_raised_at_the_end() -> None:
    @dag(id=_id())
    def d() -> None:
        flaky(succeed_at=9) >> echo()

    with pytest.raises(Flaky, match="attempt 3 failed") as raised:
        d.test()
    run = raised.value.orchestrator_run  # type: ignore[attr-defined]
    assert len(run.attempts["flaky"]) == 3 and run.attempts["flaky"][-1].retry_delay is None
    assert run.states == {"flaky": "failed", "echo": "upstream_failed"}
    assert run.failed == ["flaky"] and run.error is raised.value
    assert any("flaky: failed" in note for note in raised.value.__notes__)


def test_jittered_delays_stay_in_the_upper_half_of_the_backoff() -> None:
    @dag(id=_id())
    def d() -> None:
        jittery()

    run = d.test(raise_on_failure=False)
    delays = [a.retry_delay for a in run.attempts["jittery"]]
    assert delays[-1] is None
    for delay, base in zip(delays[:-1], (2.0, 4.0, 8.0), strict=True):
        assert delay is not None and base / 2 <= delay <= base


def test_an_error_that_is_not_worth_retrying_fails_at_once() -> None:
    @dag(id=_id())
    def d() -> None:
        hopeless()

    run = d.test(raise_on_failure=False)
    assert SEEN == ["hopeless"]
    assert [(a.number, a.retry_delay) for a in run.attempts["hopeless"]] == [(1, None)]


def test_wait_backoff_waits_what_it_records() -> None:
    @dag(id=_id())
    def d() -> None:
        timed_flaky()

    run = d.test(wait_backoff=True)
    first, second = SEEN
    recorded = run.attempts["timed_flaky"][0].retry_delay
    assert recorded == 0.05
    assert second - first >= recorded  # sleep() waits at least that long


def test_a_timeout_fails_the_attempt_and_the_retry_runs() -> None:
    @dag(id=_id())
    def d() -> None:
        slow_once()

    run = d.test()
    assert run == {"slow_once": "attempt 2"}
    first, second = run.attempts["slow_once"]
    assert (first.error_type, first.message) == ("TaskTimeout",
                                                 "exceeded its timeout of 1.0 s")
    assert isinstance(first.exception, errors.TaskTimeout)
    assert second.outcome == "success"
    abandoned = _thread("orchestrator-test-slow_once-1")
    RELEASE.set()
    abandoned.join(30)
    assert not abandoned.is_alive()
    assert "late" not in SEEN  # the abandoned body was stopped when it woke up


def test_a_busy_body_is_stopped_at_its_deadline() -> None:
    @dag(id=_id())
    def d() -> None:
        spins()

    with pytest.raises(errors.TaskTimeout):
        d.test()
    spinning = _thread("orchestrator-test-spins-1")
    spinning.join(30)  # the loop itself would run for a minute
    assert not spinning.is_alive()
    assert "spun out" not in SEEN


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the command through /proc")
def test_a_shell_task_past_its_timeout_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    d = spec.build({"id": _id(), "params": {"pid_file": {"type": "string"}}, "tasks": [
        {"id": "sleeper", "kind": "shell", "timeout": 0.5,
         "command": 'echo $$ > "$ORCH_PARAM_PID_FILE"; exec sleep 60'}]})
    with pytest.raises(errors.TaskTimeout):
        local.run_in_process(d, {"pid_file": str(pid_file)})
    pid = int(pid_file.read_text())
    wait_until(lambda: not alive(pid), timeout=30, what="the command to be killed")


def test_failure_rules_run_after_a_failure_and_all_success_ones_do_not() -> None:
    @dag(id=_id())
    def d() -> None:
        b, ok = boom(), fine()
        after = echo.override(task_id="after")(b)
        echo.override(task_id="after_after")(after)
        echo.override(task_id="cleanup", trigger_rule="all_done")(b)
        echo.override(task_id="alert", trigger_rule="one_failed")(b)
        echo.override(task_id="none_failed", trigger_rule="none_failed")(b)
        echo.override(task_id="all_failed", trigger_rule="all_failed")(b)
        [b, ok] >> echo.override(task_id="one_success", trigger_rule="one_success")()
        after >> echo.override(task_id="after_done", trigger_rule="all_done")()

    run = d.test(raise_on_failure=False)
    assert run.states == {
        "boom": "failed", "fine": "success", "after": "upstream_failed",
        "after_after": "upstream_failed", "cleanup": "success", "alert": "success",
        "none_failed": "upstream_failed", "all_failed": "success", "one_success": "success",
        "after_done": "success"}
    # a failed task has no result: what reads it gets None, as on a worker
    assert run == {"fine": 1, "cleanup": None, "alert": None, "all_failed": None,
                   "one_success": None, "after_done": None}
    assert "boom" not in run and "after" not in run
    assert run.failed == ["boom"] and isinstance(run.error, ValueError)
    assert run.state == RunState.FAILED  # after_after, a leaf, is upstream_failed


def test_failure_rules_are_skipped_when_nothing_fails() -> None:
    @dag(id=_id())
    def d() -> None:
        ok = fine()
        echo.override(task_id="alert", trigger_rule="one_failed")(ok)
        echo.override(task_id="all_failed", trigger_rule="all_failed")(ok)
        echo.override(task_id="cleanup", trigger_rule="all_done")(ok)

    run = d.test()
    assert run.states == {"fine": "success", "alert": "skipped", "all_failed": "skipped",
                          "cleanup": "success"}
    assert run == {"fine": 1, "cleanup": 1}


def test_the_exception_is_raised_after_the_cleanup_ran() -> None:
    @dag(id=_id())
    def d() -> None:
        b = boom()
        echo.override(task_id="cleanup", trigger_rule="all_done")(b)

    with pytest.raises(ValueError, match="boom failed") as raised:
        d.test()
    assert SEEN == ["boom", "cleanup"]
    run = raised.value.orchestrator_run  # type: ignore[attr-defined]
    assert run == {"cleanup": None}
    assert run.state == RunState.SUCCESS  # handled downstream: a worker ends it success


def test_the_first_failure_is_raised_and_every_one_is_listed() -> None:
    @dag(id=_id())
    def d() -> None:
        boom()
        flaky.override(task_id="later", retries=0)(succeed_at=2)

    with pytest.raises(ValueError, match="boom failed") as raised:
        d.test()
    assert raised.value.orchestrator_run.failed == ["boom", "later"]  # type: ignore[attr-defined]


def test_a_failed_instance_fails_its_mapped_task_after_every_instance_ran() -> None:
    @dag(id=_id())
    def d() -> None:
        echo.override(task_id="after")(fragile.map(numbers(3)))

    with pytest.raises(KeyError, match="item 1") as raised:
        d.test()
    run = raised.value.orchestrator_run  # type: ignore[attr-defined]
    assert run.states == {"numbers": "success", "fragile[0]": "success",
                          "fragile[1]": "failed", "fragile[2]": "success",
                          "fragile": "failed", "after": "upstream_failed"}
    assert len(run.attempts["fragile[1]"]) == 2 and len(run.attempts["fragile[2]"]) == 1
    assert run.failed == ["fragile[1]", "fragile"]
    assert run == {"numbers": [0, 1, 2]}


def test_mapping_over_something_else_than_a_list_is_a_map_error() -> None:
    @dag(id=_id())
    def d() -> None:
        echo.map(not_a_list())

    with pytest.raises(errors.MapError, match="returned int, not a list"):
        d.test()


def test_a_branch_naming_no_child_fails_its_attempts() -> None:
    @dag(id=_id())
    def d() -> None:
        bad_branch() >> echo()

    run = d.test(raise_on_failure=False)
    assert [a.error_type for a in run.attempts["bad_branch"]] == ["BranchError"] * 2
    assert run.states == {"bad_branch": "failed", "echo": "upstream_failed"}


def _thread(name: str) -> threading.Thread:
    found = [t for t in threading.enumerate() if t.name == name]
    assert found, f"no thread {name} (threads: {[t.name for t in threading.enumerate()]})"
    return found[0]

