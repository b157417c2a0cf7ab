"""Flower for a local stack: on 127.0.0.1, with basic auth, checked before it is announced.

Its login and the broker URL reach it through its environment (FLOWER_BASIC_AUTH, and
ORCH_BROKER_URL read by :mod:`orchestrator.devstack.flower_app`), never its command line.
Its task list shows each task's kwargs, which carry the DAG, run and task id, so a mapped
task's instances can be told apart.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request

from orchestrator import errors
from orchestrator.devstack import processes
from orchestrator.settings import Settings

COLUMNS = "name,uuid,state,kwargs,received,runtime,worker"
APP = "orchestrator.devstack.flower_app"
START_TIMEOUT_S = 30.0


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # as Flower's own server binds: a port in TIME_WAIT after a restart is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(settings: Settings, broker_url: str, password: str,
          log_path: str | None = None) -> subprocess.Popen[bytes]:
    """Start Flower and wait until it answers; raise, naming the cause, if it does not."""
    port, user = settings.flower.port, settings.flower.user
    if not port_free(port):
        raise errors.OrchestratorError(
            f"Flower cannot start: port {port} on 127.0.0.1 is taken (set ORCH_FLOWER_PORT "
            "to a free one, or run `up --no-flower`)")
    proc = processes.spawn(
        ["celery", "-A", APP, "flower", "--address=127.0.0.1", f"--port={port}",
         f"--tasks_columns={COLUMNS}"], settings.with_env(ORCH_BROKER_URL=broker_url),
        log_path=log_path, extra_env={"FLOWER_BASIC_AUTH": f"{user}:{password}"},
        # Flower needs the broker and its own login only: without the key it cannot sign
        # (workers refuse the tasks and revokes its buttons send), and it never sees the
        # database.
        without=("ORCH_DATABASE_URL", "ORCH_SIGNING_KEY", "ORCH_FLOWER_PASSWORD"))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise errors.OrchestratorError(f"Flower exited with status {proc.returncode} "
                                           "while starting")
        if _answers(port):
            return proc
        time.sleep(0.2)
    processes.terminate(proc)
    raise errors.OrchestratorError(f"Flower did not answer on port {port} within "
                                   f"{START_TIMEOUT_S:.0f} s")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False
