"""Processes we start are always stopped: `orchestrator up`, the embedded broker, Flower."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.support import ROOT, Up, alive, free_port, make_settings, wait_until

pytestmark = pytest.mark.integration




def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                         check=False).stdout.split()
    kids = {int(p) for p in out}
    for k in list(kids):
        kids |= _descendants(k)
    return kids


def test_embedded_broker_dies_with_a_sigkilled_launcher(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from orchestrator.devstack.broker import EmbeddedBroker
        b = EmbeddedBroker()
        b.start()
        print(b.server_pid, flush=True)
        time.sleep(600)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
    assert launcher.stdout is not None
    server_pid = int(launcher.stdout.readline())
    assert alive(server_pid)
    launcher.kill()
    launcher.wait()
    wait_until(lambda: not alive(server_pid), timeout=30,
               what="the Valkey server to stop after its launcher was SIGKILLed")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_stops_everything_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(ORCH_DATABASE_URL=f"sqlite:///{tmp_path / 'up.db'}",
               ORCH_DAGS_PATH=str(ROOT / "dags"), ORCH_FLOWER_PORT=str(free_port()),
               ORCH_SERVER_PORT=str(free_port()))
    up = Up(tmp_path, env)
    try:
        assert up.ready(), "up exited early:\n" + up.output
        children = _descendants(up.proc.pid)
        assert len(children) >= 3  # broker supervisor + server, worker + pool, flower
        up.proc.send_signal(sig)
        assert up.proc.wait(timeout=60) in (0, 130, 143, -sig)
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait()
        up.stop()
    wait_until(lambda: not any(alive(p) for p in children), timeout=30,
               what="every process `up` started to stop")


@pytest.fixture
def flower_stack(broker_url: str, database_url: str, ledger_dir: Path,
                 tmp_path: Path) -> Iterator[LocalStack]:
    settings = make_settings(broker_url, database_url, flower_port=free_port(),
                             flower_password="secret")
    with LocalStack(settings, workers=1, flower=True, log_dir=str(tmp_path)) as s:
        yield s


def _flower_get(port: int, path: str, auth: str | None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def test_flower_shows_readable_task_names_and_dag_context(flower_stack: LocalStack) -> None:
    port = flower_stack.settings.flower.port
    wait_until(lambda: _flower_get(port, "/healthcheck", None)[0] == 200, what="Flower")
    assert _flower_get(port, "/api/tasks", None)[0] == 401  # basic auth is on
    with Client(flower_stack.settings) as client:
        run_id = client.submit("chain20")
        assert client.wait(run_id, timeout=120).state == RunState.SUCCESS

    def our_tasks() -> list[dict[str, object]]:
        status, body = _flower_get(port, "/api/tasks?limit=1000", "admin:secret")
        tasks = json.loads(body) if status == 200 else {}
        return [t for t in tasks.values() if run_id in str(t.get("kwargs"))]

    found = wait_until(lambda: len(our_tasks()) == 20 and our_tasks(), timeout=60,
                       what="Flower to list the run's 20 tasks")
    names = {t["name"] for t in found}
    assert names == {"chain20.inc"}  # twenty uses of one function: one Celery task name
    kwargs = str(found[0]["kwargs"])
    assert "'dag': 'chain20'" in kwargs and f"'run': '{run_id}'" in kwargs
    assert {str(t["kwargs"]).split("'task': '")[1].split("'")[0] for t in found} == {
        "inc"} | {f"inc__{i}" for i in range(1, 20)}
    # each attempt keeps its message's Celery id: the run page's link to its Flower row
    with Client(flower_stack.settings) as client:
        run = client.get_run(run_id)
    assert {a.celery_id for t in run.tasks.values() for a in t.attempts} == {
        t["uuid"] for t in found}
    # the task list shows each task's kwargs (run and task id): a map's instances differ
    status, page = _flower_get(port, "/tasks", "admin:secret")
    assert status == 200 and b'data-column="kwargs"' in page
