"""DAGs that change while workers run: new files are picked up without a restart, a run
keeps the version it was submitted with, and a task no worker has fails, naming why."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState, TaskState
from orchestrator.store.tables import dag_versions
from tests.support import alive, make_settings, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 90


def _gated_dag(dag_id: str, gate: Path, version: str, extra: bool) -> str:
    """A DAG whose first task waits for ``gate``; ``extra`` adds a third task (v2)."""
    return textwrap.dedent(f"""
        import os, time
        from orchestrator import dag, task

        @task
        def wait() -> str:
            deadline = time.monotonic() + 60
            while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:
                time.sleep(0.02)
            return {version!r}

        @task
        def step(x: str) -> str:
            return x + ">step"

        @task
        def extra(x: str) -> str:
            return x + ">extra"

        @dag(id={dag_id!r})
        def d() -> None:
            s = step(wait())
            {"extra(s)" if extra else "pass"}
    """)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / f"dags_{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


@pytest.fixture
def folder_stack(broker_url: str, database_url: str, folder: Path,
                 tmp_path: Path) -> Iterator[LocalStack]:
    (folder / "seed.yaml").write_text("id: seed\ntasks:\n  - {id: s, shell: echo seed}\n")
    with LocalStack(make_settings(broker_url, database_url, dags_path=folder), workers=1,
                    concurrency=2, log_dir=str(tmp_path)) as s:
        yield s


def test_a_dag_file_added_while_workers_run_runs_without_a_restart(
        folder_stack: LocalStack, folder: Path) -> None:
    worker_pid = folder_stack.workers[0].pid
    u = uuid.uuid4().hex[:8]
    (folder / f"added_{u}.py").write_text(textwrap.dedent(f"""
        from orchestrator import dag, task

        @task
        def one() -> int:
            return 1

        @task
        def plus(x: int) -> int:
            return x + 41

        @dag(id="added_{u}")
        def d() -> None:
            plus(one())
    """))
    (folder / f"added_{u}.yaml").write_text(
        f"id: added_yaml_{u}\ntasks:\n  - {{id: hello, shell: echo hi}}\n")
    with Client(folder_stack.settings) as client:  # a new client sees the new files
        py = client.wait(client.submit(f"added_{u}"), timeout=WAIT_S)
        yml = client.wait(client.submit(f"added_yaml_{u}"), timeout=WAIT_S)
    assert (py.state, py.tasks["plus"].result) == (RunState.SUCCESS, 42)
    assert (yml.state, yml.tasks["hello"].result) == (RunState.SUCCESS, "hi")
    assert folder_stack.workers[0].pid == worker_pid and alive(worker_pid)  # no restart


def test_a_run_keeps_its_version_when_the_file_changes_mid_run(
        folder_stack: LocalStack, folder: Path, tmp_path: Path) -> None:
    u = uuid.uuid4().hex[:8]
    dag_id, gate, file = f"ver_{u}", tmp_path / f"gate_{u}", folder / f"ver_{u}.py"
    file.write_text(_gated_dag(dag_id, gate, "v1", extra=False))
    with Client(folder_stack.settings) as client:
        v1 = client.dag(dag_id).version
        first = client.submit(dag_id)
        wait_until(lambda: client.get_run(first).tasks["wait"].state == TaskState.RUNNING,
                   what="the first run's 'wait' to start")
    file.write_text(_gated_dag(dag_id, gate, "v2", extra=True))
    with Client(folder_stack.settings) as client:
        v2 = client.dag(dag_id).version
        second = client.submit(dag_id)
        gate.touch()
        old, new = client.wait(first, timeout=WAIT_S), client.wait(second, timeout=WAIT_S)
    assert v1 != v2
    assert (old.state, old.dag_version, set(old.tasks)) == (RunState.SUCCESS, v1,
                                                            {"wait", "step"})
    assert old.tasks["step"].result == "v1>step"  # the graph of v1, run to its end
    assert (new.state, new.dag_version, set(new.tasks)) == (RunState.SUCCESS, v2,
                                                            {"wait", "step", "extra"})
    assert new.tasks["extra"].result == "v2>step>extra"
    # each attempt records what its worker had loaded: v1 when 'wait' of the first run
    # started, v2 for the second run, whose version made the worker look again
    assert old.tasks["wait"].attempts[0].dag_version == v1
    assert {a.dag_version for t in new.tasks.values() for a in t.attempts} == {v2}
    engine = sa.create_engine(folder_stack.settings.database.url)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(dag_versions.c.version).where(
            dag_versions.c.dag_id == dag_id)).scalars().all()
    engine.dispose()
    assert sorted(stored) == sorted([v1, v2])  # each version stored once


def test_runs_show_names_the_versions(folder_stack: LocalStack, folder: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    u = uuid.uuid4().hex[:8]
    gate = tmp_path / f"gate_{u}"
    gate.touch()
    (folder / f"shown_{u}.py").write_text(_gated_dag(f"shown_{u}", gate, "v", extra=False))
    for key, value in folder_stack.settings.as_env().items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    done = runner.invoke(cli.app, ["run", f"shown_{u}", "--wait", "--json"])
    assert done.exit_code == 0, done.output
    run = json.loads(done.stdout)
    assert len(run["dag_version"]) == 64
    table = runner.invoke(cli.app, ["runs", "show", run["id"][:10]])
    assert f"version {run['dag_version'][:12]}" in table.stdout
    listed = runner.invoke(cli.app, ["dags", "list", "--json"])
    assert {d["id"]: d["version"] for d in json.loads(listed.stdout)}[f"shown_{u}"] == (
        run["dag_version"])


def test_a_task_no_worker_can_resolve_fails_naming_the_dag_and_file(
        folder_stack: LocalStack, tmp_path: Path) -> None:
    elsewhere = tmp_path / "client_dags"
    elsewhere.mkdir()
    u = uuid.uuid4().hex[:8]
    ghost = elsewhere / f"ghost_{u}.yaml"
    ghost.write_text(f"id: ghost_{u}\ntasks:\n  - {{id: boo, shell: echo boo}}\n")
    # the client knows a DAG the workers' folder does not have
    with Client(folder_stack.settings.with_env(ORCH_DAGS_PATH=str(elsewhere))) as client:
        run = client.wait(client.submit(f"ghost_{u}"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    boo = run.tasks["boo"]
    assert boo.state == TaskState.FAILED
    (attempt,) = boo.attempts
    assert attempt.error_type == "UnresolvableTask"
    assert f"DAG 'ghost_{u}'" in (attempt.error_message or "")
    assert str(ghost) in (attempt.error_message or "")
