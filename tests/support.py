"""Helpers the tests share: waiting on conditions, the execution ledger, settings for
test stacks, processes, and DAGs built in code for store-level tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrator import errors
from orchestrator.model import spec
from orchestrator.model.compiled import CompiledDag
from orchestrator.settings import Settings
from orchestrator.store import Store
from orchestrator.store.seed import scratch_postgres
from orchestrator.testing import waiting

ROOT = Path(__file__).resolve().parents[1]
TEST_DAGS = ROOT / "tests" / "dags"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_DEFAULT = "mysql://root@127.0.0.1:3306/test"

FAST = {"lease_seconds": 1.0, "task_timeout_max": 5.0, "visibility_timeout": 8.0,
        "unacked_restore_interval": 1.0}
"""Settings for test stacks: timings scaled down so lost work comes back in seconds."""


TEST_SIGNING_KEY = "test-signing-key-" + uuid.uuid4().hex
"""The key test stacks sign task messages with (one per test session)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a server a test starts itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` (the
    users' helper, failing the test instead of raising)."""
    try:
        return waiting.wait_until(predicate, timeout, what, interval)
    except errors.WaitTimeout as exc:
        pytest.fail(str(exc))


class Ledger:
    """What the test DAGs' tasks recorded (tests/dags/_support.py), one file per run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, run_id: str) -> list[dict[str, Any]]:
        f = self.path / f"{run_id}.jsonl"
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text().splitlines() if line]

    def of(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        return [e for e in self.entries(run_id) if e["task"] == task_id]

    def open_gate(self, run_id: str, name: str) -> None:
        (self.path / f"{run_id}.{name}.gate").touch()


def make_settings(broker_url: str, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test stack; ``overrides`` by variable name without its prefix
    (``requeue_after=2`` is ORCH_REQUEUE_AFTER)."""
    values: dict[str, Any] = {"broker_url": broker_url, "database_url": database_url,
                              "dags_path": TEST_DAGS,
                              "default_queue": f"test-{uuid.uuid4().hex[:8]}",
                              "signing_key": TEST_SIGNING_KEY, **FAST}
    values.update(overrides)
    return Settings.from_env({f"ORCH_{k.upper()}": v for k, v in values.items()
                              if v is not None})


def compiled_of(upstream: dict[str, list[str]], dag_id: str = "direct",
                retries: int = 0) -> CompiledDag:
    """A DAG of shell tasks with these dependencies, for store-level tests."""
    return CompiledDag.of(spec.build({"id": dag_id, "tasks": [
        {"id": t, "kind": "shell", "command": "true", "upstream": ups, "retries": retries}
        for t, ups in upstream.items()]}))


def wait_idle(settings: Settings, timeout: float = 60.0) -> None:
    """Wait until no worker has a task running, reserved or scheduled, and the queue and
    the broker's unacknowledged set are empty: nothing more of anything sent can start."""
    import redis

    from orchestrator.transport.dispatch import make_producer_app

    url = settings.broker.url or ""
    app = make_producer_app(settings, url)
    r = redis.Redis.from_url(url)
    queue = settings.worker.default_queue

    def idle() -> bool:
        inspect = app.control.inspect(timeout=1.0)
        for answer in (inspect.active(), inspect.reserved(), inspect.scheduled()):
            if answer is None or any(answer.values()):
                return False
        return r.llen(queue) == 0 and r.hlen("unacked") == 0

    try:
        wait_until(idle, timeout=timeout, what="every worker to be idle", interval=0.2)
    finally:
        r.close()
        app.close()


def rows_at_rest(store: Store, settings: Settings) -> dict[str, int]:
    """Rows per table once the stack's workers are idle, so that only what the test does
    next can change them."""
    wait_idle(settings)
    return store.count_rows()


class Up:
    """``orchestrator up`` in a project folder, with this environment, until stopped."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "up"],
                                     cwd=project, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []

    def ready(self) -> bool:
        """Read its output until it says it is up (True) or it exits (False)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Ctrl-C stops everything" in line:
                return True
        return False

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 60.0) -> None:
        """Ctrl-C (SIGKILL if it outlasts ``timeout``), and the rest of its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.lines += self.proc.stdout.readlines()
            self.proc.stdout.close()


@contextlib.contextmanager
def fresh_database(like: str, folder: Path) -> Iterator[str]:
    """An empty database of the same kind as ``like``, dropped afterwards: for a test
    that must see no other test's rows."""
    if sa.make_url(like).get_backend_name() == "sqlite":
        yield f"sqlite:///{folder / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        return
    with scratch_postgres(like, prefix="orch_fresh") as url:
        yield url


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """These variables set in this process's environment (the processes it starts inherit
    them: a coordinator reads receivers' addresses there), as they were afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
