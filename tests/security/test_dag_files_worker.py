"""A real worker on a folder of hostile DAG files keeps running and runs the good ones,
also after a file turns hostile while it runs; the client (whose submit loads the same
folder) names the bad files and submits the good DAGs. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.processes import wait_for_workers
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.security import hostile_dags
from tests.security.hostile_dags import IMPORT_TIMEOUT, Folder, reported
from tests.support import ROOT, make_settings

pytestmark = [pytest.mark.security, pytest.mark.integration]
WAIT_S = 120


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(stack.settings.as_env())
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=WAIT_S + 60, check=False)


@pytest.fixture
def own_imports() -> Iterator[Callable[[Path], None]]:
    yield from hostile_dags.own_imports()


def test_a_worker_on_a_hostile_folder_runs_the_good_dags(
        broker_url: str, database_url: str, tmp_path: Path,
        own_imports: Callable[[Path], None]) -> None:
    folder = Folder(tmp_path / "dags")
    own_imports(folder.path)
    folder.add_good()
    folder.add_catchable()
    folder.add_hang()
    turns = folder.write(f"turns_{folder.u}.py", hostile_dags.good_py(f"turns_{folder.u}"))
    # The client loads the folder in this process: only a process started here may meet
    # os._exit, so the worker alone gets that file first.
    settings = make_settings(broker_url, database_url, dags_path=folder.path,
                             dag_import_timeout=IMPORT_TIMEOUT)
    with LocalStack(settings, workers=0, log_dir=str(tmp_path)) as stack:
        exits = folder.write(f"exits_hard_{folder.u}.py", "import os\nos._exit(0)\n")
        worker = stack.add_worker(f"hostile-{folder.u}", concurrency=1)
        exits.unlink()
        with Client(stack.settings) as client:
            folder.check({k: str(v) for k, v in client.dag_errors().items()})
            assert {d.id for d in client.dags()} == {*folder.good, f"turns_{folder.u}"}
            for dag_id in folder.good:
                run = client.wait(client.submit(dag_id, {}), timeout=WAIT_S)
                assert run.state == RunState.SUCCESS, run
            assert client.result(run.id, "say") == "hi"

        # While it runs: a DAG file is added and one that was good turns hostile. The
        # new DAG is unknown to the worker, so it looks at the folder again. From here
        # on only processes started here load the folder.
        folder.expect(turns.name, "import os\nos._exit(0)\n", "",
                      "importing it ended the interpreter (exit status 0)")
        folder.write(f"later_{folder.u}.yaml",
                     f"id: later_{folder.u}\ntasks: [{{id: t, shell: echo later}}]\n")
        proc = cli(stack, "run", f"later_{folder.u}", "--wait", "--json",
                   "--timeout", str(WAIT_S))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        run_json = json.loads(proc.stdout)
        assert (run_json["state"], run_json["tasks"]["t"]["result"]) == ("success", "later")
        listed = cli(stack, "dags", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert {d["id"] for d in json.loads(listed.stdout)} == {*folder.good,
                                                                 f"later_{folder.u}"}
        folder.check(reported(listed.stderr))
        assert worker.proc.poll() is None
        assert stack.settings.broker.url is not None
        wait_for_workers(stack.settings.broker.url, stack.settings, [worker.name],
                         procs=[worker.proc])  # it still answers a ping
    log = (tmp_path / f"{worker.name}.log").read_text()
    assert "Traceback" not in log, log
