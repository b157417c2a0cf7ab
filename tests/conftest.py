"""Shared fixtures: real services, started here when the environment gives none.

- broker: ORCH_TEST_REDIS_URL, else an embedded Valkey on a free loopback port;
- databases: SQLite in a temp folder, and PostgreSQL when ORCH_TEST_POSTGRES_URL is set
  or a server answers on 127.0.0.1:5432 (each session gets a database of its own,
  dropped at the end). With CI=true an unreachable PostgreSQL fails instead of skipping.
- MariaDB, for sql tasks' tests only (never a state database): ORCH_TEST_MARIADB_URL or
  127.0.0.1:3306 as root, the same way (a session database; fails with CI=true).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from typer.testing import CliRunner

from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.store import Store
from tests.support import MARIADB_DEFAULT, PG_DEFAULT, Ledger, fresh_database, make_settings

for _key in [k for k in os.environ if k.startswith("ORCH_") and not k.startswith("ORCH_TEST_")]:
    del os.environ[_key]  # a developer's own ORCH_* settings must not leak into tests


@pytest.fixture(scope="session")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger")
    os.environ["ORCH_TEST_LEDGER_DIR"] = str(path)  # inherited by every worker we start
    return path


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


def _mariadb_admin_url() -> str | None:
    url = sa.make_url(os.environ.get("ORCH_TEST_MARIADB_URL", MARIADB_DEFAULT))
    engine = sa.create_engine(url.set(drivername="mysql+pymysql"),
                              connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return str(url.render_as_string(hide_password=False))
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A MariaDB database of this session's own, as a user writes its URL (``mysql://``)."""
    admin = _mariadb_admin_url()
    if admin is None:
        msg = "MariaDB is not reachable (set ORCH_TEST_MARIADB_URL)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; in CI the MariaDB tier must run")
        pytest.skip(msg)
    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(sa.make_url(admin).set(drivername="mysql+pymysql"))
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield sa.make_url(admin).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    engine.dispose()


@pytest.fixture
def no_outside_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the connections the test sets: none from the environment, no connections
    file (a developer's own, or one another test named)."""
    from orchestrator.execution import connections

    for name in list(os.environ):
        if name.startswith(connections.ENV_PREFIX) or name == connections.FILE_VARIABLE:
            monkeypatch.delenv(name)
    connections.use_file(None)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres",
                                                                  marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with the schema at head (as `orchestrator db upgrade` leaves it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    store = Store(url)
    store.upgrade()
    store.dispose()
    return url


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) of the same kind as ``database_url``."""
    with fresh_database(database_url, tmp_path) as url:
        yield url


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


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on this tier's shared database, disposed after the test."""
    s = Store(database_url)
    yield s
    s.dispose()


@pytest.fixture
def runner(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI in process, with the shared stack's settings in its environment."""
    for key, value in stack.settings.as_env().items():
        monkeypatch.setenv(key, value)
    return CliRunner()


@pytest.fixture
def own_stack(broker_url: str, database_url: str, ledger_dir: Path,
              tmp_path: Path) -> Iterator[LocalStack]:
    """Workers of this test only (on a queue of their own), started by the test."""
    with LocalStack(make_settings(broker_url, database_url), workers=0,
                    log_dir=str(tmp_path)) as s:
        yield s
