"""The `orchestrator` command against the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orchestrator import cli, errors
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.store import schema
from tests.support import ROOT, TEST_DAGS, TEST_SIGNING_KEY, Ledger

pytestmark = pytest.mark.integration


def test_run_wait_json_and_runs_show(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["run", "chain20", "--param", "start=3", "--wait", "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["state"] == "success"
    assert run["tasks"]["inc__19"]["state"] == "success"
    assert run["tasks"]["inc__19"]["result"] == 23
    assert [a["outcome"] for a in run["tasks"]["inc"]["attempts"]] == ["success"]

    shown = runner.invoke(cli.app, ["runs", "show", run["id"], "--json"])
    assert shown.exit_code == 0, shown.output
    again = json.loads(shown.stdout)
    assert again["state"] == "success"
    assert set(again["tasks"]) == {"inc"} | {f"inc__{i}" for i in range(1, 20)}
    assert all(len(t["attempts"]) == 1 for t in again["tasks"].values())

    listed = runner.invoke(cli.app, ["runs", "list", "--json", "--limit", "500"])
    assert run["id"] in [r["id"] for r in json.loads(listed.stdout)]


def test_runs_show_lists_mapped_instances_with_their_items(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["run", "mapfix", "-p", "n=3", "--wait", "--json"])
    assert res.exit_code == 1, res.output  # picky[1] fails
    run = json.loads(res.stdout)
    picky = run["tasks"]["picky"]
    assert (picky["state"], picky["map_count"], picky["map_done"], picky["map_failed"]) == (
        "failed", 3, 3, 1)
    assert picky["error"] == "1 of 3 mapped instances failed"
    inst = [run["tasks"][f"picky[{i}]"] for i in range(3)]
    assert [(t["map_parent"], t["map_index"], t["map_item"], t["state"]) for t in inst] == [
        ("picky", 0, 0, "success"), ("picky", 1, 1, "failed"), ("picky", 2, 2, "success")]
    assert [a["error_type"] for a in inst[1]["attempts"]] == ["ValueError"]
    assert run["tasks"]["total"]["error"] == "upstream task 'picky' did not succeed"

    table = runner.invoke(cli.app, ["runs", "show", run["id"]])
    rows = [line.split("│")[1].strip() for line in table.stdout.splitlines() if "│" in line]
    assert [r for r in rows if r.startswith("picky")] == [
        "picky", "picky[0]", "picky[1]", "picky[2]"]


def test_run_wait_exits_1_when_the_run_fails(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["run", "failing", "--wait", "--json"])
    assert res.exit_code == 1
    run = json.loads(res.stdout)
    assert run["state"] == "failed"
    assert run["tasks"]["boom"]["state"] == "failed"
    assert run["tasks"]["down"]["state"] == "upstream_failed"


def test_rerun_from_failure(runner: CliRunner, ledger: Ledger) -> None:
    failed = runner.invoke(cli.app, ["run", "fixable", "--wait", "--json"])
    assert failed.exit_code == 1
    run_id = json.loads(failed.stdout)["id"]
    ledger.open_gate(run_id, "fix")
    res = runner.invoke(cli.app, ["rerun", run_id, "--wait", "--json"])
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["state"] == "success"
    assert [a["outcome"] for a in run["tasks"]["needs_fix"]["attempts"]] == ["failed", "success"]


def test_run_without_wait_prints_the_run_id(runner: CliRunner, client: Client) -> None:
    res = runner.invoke(cli.app, ["run", "typed", "-p", "name=ada", "-p", "times=2", "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)["run_id"]
    assert client.wait(run_id, timeout=60).tasks["greet"].result == "hello ada hello ada"


def test_bad_params_raise_a_params_error(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["run", "typed", "-p", "times=2"])
    assert isinstance(res.exception, errors.ParamsError)
    assert "missing required param 'name'" in str(res.exception)


def test_dags_list_json(runner: CliRunner) -> None:
    res = runner.invoke(cli.app, ["dags", "list", "--json"])
    assert res.exit_code == 0
    ids = {d["id"] for d in json.loads(res.stdout)}
    assert {"chain20", "wide500", "yaml_mixed"} <= ids
    assert "cyclic" not in ids


def _cli(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_DATABASE_URL"] = "sqlite:///:memory:"
    env.update(settings)
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_dags_validate_names_the_cycle_and_exits_1() -> None:
    proc = _cli("dags", "validate", str(TEST_DAGS / "tdag_broken.yaml"))
    assert proc.returncode == 1
    assert "cycle: b -> c -> a -> b" in proc.stderr.replace("\n", "")


def test_dags_validate_accepts_the_examples() -> None:
    proc = _cli("dags", "validate", str(ROOT / "dags"))
    assert proc.returncode == 0, proc.stderr
    assert "ok example " in proc.stdout and "ok example_yaml " in proc.stdout


def test_errors_exit_2_with_a_message(stack: LocalStack) -> None:
    proc = _cli("run", "no_such_dag", **stack.settings.as_env())
    assert proc.returncode == 2
    assert "unknown DAG 'no_such_dag'" in proc.stderr


def test_a_schema_behind_stops_every_command_with_one_line_naming_db_upgrade() -> None:
    for args in (["run", "example"], ["runs", "list"], ["coordinator"]):
        proc = _cli(*args, ORCH_BROKER_URL="redis://127.0.0.1:1/0",  # an empty database
                    ORCH_SIGNING_KEY=TEST_SIGNING_KEY)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (args, proc.stderr)
        assert "has no orchestrator schema yet: run `orchestrator db upgrade`" in lines[0]


def test_db_upgrade_and_current_and_no_ddl_on_connect(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    refused = _cli("runs", "list", ORCH_DATABASE_URL=url)
    assert refused.returncode == 2 and "run `orchestrator db upgrade`" in refused.stderr
    engine = sa.create_engine(url)
    assert sa.inspect(engine).get_table_names() == []  # the client ran no DDL
    behind = _cli("db", "current", ORCH_DATABASE_URL=url)
    assert behind.returncode == 1 and "schema none" in behind.stdout
    up = _cli("db", "upgrade", ORCH_DATABASE_URL=url)
    assert up.returncode == 0 and f"upgraded from empty to {schema.head()}" in up.stdout
    again = _cli("db", "upgrade", ORCH_DATABASE_URL=url)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    current = _cli("db", "current", ORCH_DATABASE_URL=url)
    assert current.returncode == 0 and f"schema {schema.head()}" in current.stdout
    assert "runs" in sa.inspect(engine).get_table_names()
    assert _cli("runs", "list", ORCH_DATABASE_URL=url).returncode == 0
    engine.dispose()
