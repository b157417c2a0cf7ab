"""The README's ETL example, run as a user runs it (``make etl`` is ``python
dags/etl_demo.py``): a fixture API over HTTP, a python transform, an upsert into a SQLite
warehouse, a summary query; the first extract answer is a 503, so the extract is retried.
Run twice for the same day, the warehouse holds the same rows (the load is an upsert)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.model.states import RunState
from tests.support import ROOT

pytestmark = pytest.mark.integration

DAY = "2026-11-30"


def _run_demo(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATABASE_URL=f"sqlite:///{tmp_path / 'state.db'}",
               ORCH_DAGS_PATH=str(ROOT / "dags"))
    return subprocess.run([sys.executable, str(ROOT / "dags" / "etl_demo.py"), DAY],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


def test_the_etl_example_loads_the_warehouse_and_reruns_idempotently(tmp_path: Path) -> None:
    for _ in range(2):
        proc = _run_demo(tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        rows = db.execute("SELECT id, day, customer, total_cents FROM orders "
                          "ORDER BY id").fetchall()
    assert rows == [(f"{DAY}-1001", DAY, "Ada", 1250), (f"{DAY}-1002", DAY, "Grace", 9999),
                    (f"{DAY}-1004", DAY, "Barbara", 4200)]
    with Client(database_url=f"sqlite:///{tmp_path / 'state.db'}",
                dags_path=str(ROOT / "dags")) as client:
        runs = client.runs()
        assert [r.state for r in runs] == [RunState.SUCCESS, RunState.SUCCESS]
        run = client.get_run(runs[0].id)
        extract = run.tasks["extract"]
        assert [a.error_type for a in extract.attempts] == ["HttpStatusUnexpected", None]
        assert client.result(run.id, "summary") == [
            {"day": DAY, "orders": 3, "total_cents": 15449}]
        assert client.result(run.id, "load") == {"rowcount": 3}
