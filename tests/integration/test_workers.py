"""Several workers, killed workers, and the quick start: real processes only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.support import ROOT, Ledger, make_settings, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


@pytest.fixture
def own_stack(broker_url: str, database_url: str, ledger_dir: Path,
              tmp_path: Path) -> Iterator[LocalStack]:
    """Workers of this test only (on a queue of their own), started by the test."""
    with LocalStack(make_settings(broker_url, database_url), workers=0,
                    log_dir=str(tmp_path)) as s:
        yield s


def test_two_workers_share_one_run(own_stack: LocalStack) -> None:
    # Each worker runs one task at a time, and t1/t2 only finish while both run at
    # once: the run can only succeed if the two workers share it.
    own_stack.add_worker("left", concurrency=1)
    own_stack.add_worker("right", concurrency=1)
    with Client(own_stack.settings) as client:
        run = client.wait(client.submit("pair"), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert {run.tasks["t1"].worker.split("@")[0], run.tasks["t2"].worker.split("@")[0]} == {
        "left", "right"}


@pytest.mark.fault
def test_worker_killed_mid_task_and_replaced(own_stack: LocalStack, ledger: Ledger) -> None:
    victim = own_stack.add_worker("victim", concurrency=1)
    with Client(own_stack.settings) as client:
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        assert client.get_run(run_id).tasks["gated"].state == TaskState.RUNNING
        victim.kill()  # SIGKILL to the worker and its pool: no ack, no cleanup
        ledger.open_gate(run_id, "go")
        own_stack.add_worker("rescuer", concurrency=1)
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    gated = run.tasks["gated"]
    assert [a.outcome for a in gated.attempts] == [AttemptOutcome.LOST, AttemptOutcome.SUCCESS]
    assert gated.worker is not None and gated.worker.startswith("rescuer@")
    runs_of_gated = ledger.of(run_id, "gated")
    assert [e["attempt"] for e in runs_of_gated] == [1, 2]
    assert runs_of_gated[0]["pid"] != runs_of_gated[1]["pid"]
    for task_id in ("first", "last"):
        assert len(ledger.of(run_id, task_id)) == 1
    for t in run.tasks.values():
        assert t.state == TaskState.SUCCESS
        assert sum(a.outcome == AttemptOutcome.SUCCESS for a in t.attempts) == 1
    assert client.result(run_id, "last") == "passed"


def _valkey_pids() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "valkey"], capture_output=True, text=True,
                         check=False).stdout
    return set(out.split())


def test_quickstart_runs_the_example_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """`make run` is `orchestrator quickstart example`: the same command, end to end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'quick.db'}"
    before = _valkey_pids()
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "quickstart", "example"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in proc.stdout
    assert _valkey_pids() <= before
    with Client(database_url=env["ORCH_DATABASE_URL"], dags_path=str(ROOT / "dags")) as c:
        (run,) = c.runs()
        assert run.state == RunState.SUCCESS and run.dag_id == "example"
        assert c.result(run.id, "report") == "sum of squares 385, largest 100"


def test_quickstart_exits_non_zero_when_the_run_fails(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'quick.db'}"
    env["ORCH_DAGS_PATH"] = str(ROOT / "tests" / "dags")
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "quickstart", "failing"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "upstream_failed" in proc.stdout


@pytest.mark.fault
def test_a_task_that_kills_its_worker_every_time_ends_failed(
        own_stack: LocalStack, ledger: Ledger) -> None:
    own_stack.add_worker("target", concurrency=1)
    with Client(own_stack.settings) as client:
        run = client.wait(client.submit("suicidal"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    t = run.tasks["suicidal"]
    assert t.state == TaskState.FAILED
    assert [a.outcome for a in t.attempts] == [
        AttemptOutcome.LOST, AttemptOutcome.LOST, AttemptOutcome.FAILED]
    assert t.attempts[-1].error_type == "WorkerLost"
    # three executions, then no more: the user's 5 retries are not spent on lost workers
    assert [e["attempt"] for e in ledger.of(run.id, "suicidal")] == [1, 2, 3]
    assert run.tasks["after"].state == TaskState.UPSTREAM_FAILED


@pytest.mark.fault
def test_sigterm_lets_the_running_task_finish_once(own_stack: LocalStack,
                                                   ledger: Ledger) -> None:
    leaving = own_stack.add_worker("leaving", concurrency=1)
    with Client(own_stack.settings) as client:
        run_id = client.submit("killme")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        own_stack.add_worker("staying", concurrency=1)
        leaving.proc.send_signal(signal.SIGTERM)  # warm shutdown: finish, then exit
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=WAIT_S)
        assert leaving.proc.wait(timeout=60) == 0
    assert run.state == RunState.SUCCESS
    gated = run.tasks["gated"]
    assert [a.outcome for a in gated.attempts] == [AttemptOutcome.SUCCESS]
    assert gated.worker is not None and gated.worker.startswith("leaving@")
    assert len(ledger.of(run_id, "gated")) == 1
    assert run.tasks["last"].worker is not None
    assert run.tasks["last"].worker.startswith("staying@")
