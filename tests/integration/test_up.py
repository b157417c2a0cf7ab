"""`orchestrator up` as a new user meets it: one shell runs the stack, another runs DAGs
with nothing exported; a restart comes back on the same endpoint with the same
credentials; a component that cannot start stops it, naming why."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.settings import STACK_FILE, STATE_DIR
from tests.support import ROOT, Up, alive, free_port, wait_until

pytestmark = pytest.mark.integration


def _bare_env(**extra: str) -> dict[str, str]:
    """A shell with nothing of ours exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(extra)
    return env


def _orchestrator(project: Path, *args: str, timeout: float = 180,
                  **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=project,
                          env=_bare_env(**extra), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "dags").mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "example.py", folder / "dags" / "example.py")
    return folder


@pytest.fixture
def up(project: Path) -> Iterator[Up]:
    started = Up(project, _bare_env(ORCH_FLOWER_PORT=str(free_port()),
                                    ORCH_SERVER_PORT=str(free_port())))
    try:
        assert started.ready(), "".join(started.lines)
        yield started
    finally:
        started.stop()


def _recorded(project: Path) -> dict[str, object]:
    data = json.loads((project / STATE_DIR / STACK_FILE).read_text())
    assert isinstance(data, dict)
    return data


def test_a_second_shell_finds_the_stack_with_nothing_exported(project: Path, up: Up) -> None:
    state = project / STATE_DIR
    assert (state.stat().st_mode & 0o777, (state / STACK_FILE).stat().st_mode & 0o777) == (
        0o700, 0o600)
    recorded = _recorded(project)
    printed = "".join(up.lines)
    for secret in (recorded["broker_password"], recorded["flower_password"]):
        assert isinstance(secret, str) and secret not in printed  # `up` prints no password

    ran = _orchestrator(project, "run", "example", "-p", "n=3", "--wait", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["tasks"]["report"]["result"] == "sum of squares 14, largest 9"

    # a DAG file added while everything runs: submitted and run, nothing restarted
    (project / "dags" / "added.py").write_text(textwrap.dedent("""
        from orchestrator import dag, task

        @task
        def hello(who: str) -> str:
            return f"hello {who}"

        @dag(id="added")
        def added(who: str = "newcomer") -> None:
            hello(who)
    """))
    ran = _orchestrator(project, "run", "added", "--wait", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["tasks"]["hello"]["result"] == "hello newcomer"

    client = subprocess.run(
        [sys.executable, "-c", "from orchestrator import Client\n"
         "with Client() as c:\n"
         "    print(c.wait(c.submit('added', {'who': 'python'}), timeout=60).state)"],
        cwd=project, env=_bare_env(), capture_output=True, text=True, timeout=120, check=False)
    assert client.returncode == 0 and client.stdout.strip() == "success", client.stderr
    assert up.proc.poll() is None


def test_a_restart_keeps_the_endpoint_and_the_credentials(project: Path) -> None:
    flower, server = str(free_port()), str(free_port())
    first = Up(project, _bare_env(ORCH_FLOWER_PORT=flower, ORCH_SERVER_PORT=server))
    try:
        assert first.ready(), "".join(first.lines)
        before = _recorded(project)
    finally:
        first.stop()
    again = Up(project, _bare_env(ORCH_FLOWER_PORT=flower, ORCH_SERVER_PORT=server))
    try:
        assert again.ready(), "".join(again.lines)
        after = _recorded(project)
        assert {k: after[k] for k in ("broker_port", "broker_password", "flower_password")} == {
            k: before[k] for k in ("broker_port", "broker_password", "flower_password")}
        assert after["env"] == before["env"]
        ran = _orchestrator(project, "run", "example", "-p", "n=2", "--wait")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        second = _orchestrator(project, "up", timeout=60, ORCH_FLOWER_PORT=str(free_port()),
                               ORCH_SERVER_PORT=str(free_port()))
        assert second.returncode == 2
        assert "already running here" in second.stderr
    finally:
        again.stop()


def test_up_stops_and_says_so_when_flowers_port_is_taken(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "up"], cwd=project,
                                env=_bare_env(ORCH_FLOWER_PORT=str(port)), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 2, out + err
    assert f"Flower cannot start: port {port} on 127.0.0.1 is taken" in err
    assert "flower   http" not in out  # its URL is never announced
    wait_until(lambda: not _running_in(project), timeout=30,
               what="every process `up` started to stop")
    broker = _recorded(project)["broker_port"] if (project / STATE_DIR).exists() else None
    if isinstance(broker, int):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", broker)) != 0  # the broker is gone too


def _running_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` (every child `up` starts)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                if Path(os.readlink(entry / "cwd")) == folder.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
