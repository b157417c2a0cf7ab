"""Several workers, killed workers, and the quick start: real processes only."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.support import ROOT, alive

pytestmark = pytest.mark.integration
WAIT_S = 120


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


def _carrying(mark: str) -> list[int]:
    """Live processes whose environment holds ``mark``: what a command we started left
    behind (its broker inherits the environment), whatever other tests run beside it."""
    needle = mark.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_quickstart_runs_the_example_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """`make run` is `orchestrator quickstart example`: the same command, end to end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'quick.db'}"
    env["ORCH_TEST_MARK"] = uuid.uuid4().hex
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "quickstart", "example"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "success" in proc.stdout
    assert _carrying(f"ORCH_TEST_MARK={env['ORCH_TEST_MARK']}") == []
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
