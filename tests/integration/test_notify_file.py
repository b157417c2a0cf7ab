"""ORCH_NOTIFY_FILE: the global rules every process reads at start. A good file's rules
apply to a DAG that declares none; a bad one stops the process, naming file and line."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import Claim
from orchestrator.wiring import Wiring
from tests.support import make_settings

pytestmark = pytest.mark.integration

GOOD = "notify:\n  - on: [run_failed]\n    webhook: {url: {env: SOME_HOOK}}\n"
BAD = "notify:\n  - on: [run_failed]\n    webhook: {url: x}\n  - on: [run_faild]\n" \
      "    slack: {url: y}\n"


def test_the_files_rules_apply_to_every_dag(tmp_path: Path, broker_url: str,
                                           fresh_url: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD)
    dag = CompiledDag.of(spec.build({"id": f"nf_{uuid.uuid4().hex[:8]}", "tasks": [
        {"id": "a", "kind": "shell", "command": "false"}]}))
    assert dag.plan.alerts is None
    settings = make_settings(broker_url, fresh_url, notify_file=str(rules))
    with Wiring(settings, check_schema=False) as wiring:
        store = wiring.store
        store.upgrade()  # a database of its own: no other test's coordinator delivers here
        run_id = uuid.uuid4().hex
        store.create_run(dag, run_id=run_id, params={})
        claim = store.claim(run_id, "a", 1, worker="w", pid=1, lease_seconds=60,
                            data_from=[], max_lost=3)
        assert isinstance(claim, Claim)
        change = store.fail(run_id, "a", 1, error_type="Exit", message="1", traceback=None,
                            retry_in=None, p=dag.plan, token=claim.token)
        assert change.notified == 1
        (row,) = store.notifications(run_id)
        assert (row.event, row.channel, row.state) == ("run_failed", "webhook", "pending")


@pytest.mark.parametrize("command", [["coordinator"], ["worker"], ["runs", "list"]])
def test_a_bad_rules_file_stops_a_process_naming_its_line(
        tmp_path: Path, broker_url: str, database_url: str, command: list[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BAD)
    env = make_settings(broker_url, database_url, notify_file=str(rules)).as_env()
    done = subprocess.run([sys.executable, "-m", "orchestrator", *command],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert f"{rules}:4" in done.stderr + done.stdout
    assert "unknown event 'run_faild'" in done.stderr + done.stdout
