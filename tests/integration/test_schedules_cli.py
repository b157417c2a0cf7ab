"""``orchestrator dags pause|unpause`` and ``schedules list`` against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store import Store

DAG = """\
id: cli_sched_nightly
schedule: "30 2 * * *"
timezone: Europe/Zurich
tasks:
  - id: a
    shell: "true"
"""


def _cli(folder: Path, url: str, *args: str, ok: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATABASE_URL=url, ORCH_DAGS_PATH=str(folder))
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == ok, proc.stderr
    return proc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "nightly.yaml").write_text(DAG)
    return tmp_path


def test_pause_lists_and_unpause(folder: Path, database_url: str) -> None:
    store = Store(database_url)
    try:
        _cli(folder, database_url, "dags", "pause", "cli_sched_nightly")
        assert store.is_paused("cli_sched_nightly")
        listed = json.loads(_cli(folder, database_url, "schedules", "list", "--json").stdout)
        mine = [s for s in listed if s["dag_id"] == "cli_sched_nightly"]
        assert len(mine) == 1 and mine[0]["paused"] is True
        _cli(folder, database_url, "dags", "unpause", "cli_sched_nightly")
        assert not store.is_paused("cli_sched_nightly")
        table = _cli(folder, database_url, "schedules", "list").stdout
        assert "cli_sched_nightly" in table
    finally:
        store.dispose()


def test_pausing_an_unknown_dag_is_an_error_and_writes_nothing(folder: Path,
                                                               database_url: str) -> None:
    store = Store(database_url)
    try:
        proc = _cli(folder, database_url, "dags", "pause", "cli_sched_no_such_dag", ok=2)
        assert "no DAG 'cli_sched_no_such_dag'" in proc.stderr
        assert store.dag_states(["cli_sched_no_such_dag"]) == []
    finally:
        store.dispose()
