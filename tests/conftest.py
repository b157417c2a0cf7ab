"""Shared fixtures: real services, started here when the environment gives none.

- broker: ORCH_TEST_REDIS_URL, else an embedded Valkey on a free loopback port;
- databases: SQLite in a temp folder, and PostgreSQL when ORCH_TEST_POSTGRES_URL is set
  or a server answers on 127.0.0.1:5432 (each session gets a database of its own,
  dropped at the end). With CI=true an unreachable PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.model import plan, spec
from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEST_DAGS = ROOT / "tests" / "dags"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Settings for test stacks: timings scaled down so lost work comes back in seconds.
FAST = {"lease_seconds": 1.0, "task_timeout_max": 5.0, "visibility_timeout": 8.0,
        "unacked_restore_interval": 1.0}

for _key in [k for k in os.environ if k.startswith("ORCH_") and not k.startswith("ORCH_TEST_")]:
    del os.environ[_key]  # a developer's own ORCH_* settings must not leak into tests


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
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger")
    os.environ["ORCH_TEST_LEDGER_DIR"] = str(path)  # inherited by every worker we start
    return path


class Ledger:
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


@pytest.fixture(scope="session")
def ledger(ledger_dir: Path) -> Ledger:
    return Ledger(ledger_dir)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    given = os.environ.get("ORCH_TEST_REDIS_URL")
    if given:
        yield given
        return
    with EmbeddedBroker() as url:
        yield url


def _postgres_admin_url() -> str | None:
    url = os.environ.get("ORCH_TEST_POSTGRES_URL", PG_DEFAULT)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return str(engine.url.render_as_string(hide_password=False))
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = _postgres_admin_url()
    if admin is None:
        msg = "PostgreSQL is not reachable (set ORCH_TEST_POSTGRES_URL)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; in CI the PostgreSQL tier must run")
        pytest.skip(msg)
    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin).set(database=name).render_as_string(hide_password=False)
    yield url
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres",
                                                                  marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


def plan_of(upstream: dict[str, list[str]]) -> plan.Plan:
    """The plan of a DAG of shell tasks with these dependencies (for store-level tests)."""
    return plan.build(spec.build({"id": "direct", "tasks": [
        {"id": t, "kind": "shell", "command": "true", "upstream": ups}
        for t, ups in upstream.items()]}))


def make_settings(broker_url: str, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"broker_url": broker_url, "database_url": database_url,
                              "dags_path": TEST_DAGS,
                              "default_queue": f"test-{uuid.uuid4().hex[:8]}", **FAST}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def stack(broker_url: str, database_url: str, ledger_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One worker (2 processes) per database backend, shared by the tests of that tier."""
    logs = tmp_path_factory.mktemp("worker-logs")
    with LocalStack(make_settings(broker_url, database_url), workers=1, concurrency=2,
                    log_dir=str(logs)) as s:
        yield s


@pytest.fixture
def client(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.settings) as c:
        yield c


@pytest.fixture
def broker(broker_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(broker_url)
    yield r
    r.close()
