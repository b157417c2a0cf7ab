"""Warehouses for the sql task kind's tests: a database of the test's own on SQLite,
PostgreSQL (a schema of the session's database) or MariaDB (a database), its URL as a
user writes it, and an engine of the test's own to look at it (never the task's)."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from orchestrator.kinds import sql_engines
from orchestrator.store.seed import scratch_postgres

SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 10000000000) SELECT count(*) AS n FROM c /* {marker} */",
    "postgres": "SELECT pg_sleep(30) /* {marker} */",
    "mariadb": "SELECT SLEEP(30) /* {marker} */",
}
"""A statement that runs for long (SQLite's counts to 10^10), marked to be found."""

MANY_ROWS = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 100000000) SELECT x, 'padding' AS pad FROM c /* {marker} */",
    # In the select list: generate_series in FROM would be materialized before a row came
    "postgres": "SELECT generate_series(1, 100000000) AS x, 'padding' AS pad /* {marker} */",
    "mariadb": "SELECT seq AS x, 'padding' AS pad FROM seq_1_to_100000000 /* {marker} */",
}
"""A query returning 10^8 rows: reading them all would take minutes and gigabytes."""


@dataclasses.dataclass
class Warehouse:
    backend: str
    """sqlite, postgres or mariadb."""
    url: str
    """As a user writes it in ORCH_CONN_<NAME>."""
    engine: sa.Engine

    @property
    def text_type(self) -> str:
        return "LONGTEXT" if self.backend == "mariadb" else "TEXT"

    def rows(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query), params)]

    def scalar(self, query: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(query), params).scalar()

    def running(self, marker: str) -> int:
        """Statements with ``marker`` in their text the server is still running (0 on
        SQLite, which runs in the test's own process)."""
        if self.backend == "postgres":
            return int(self.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND datname = current_database() AND query LIKE :pattern "
                "AND pid <> pg_backend_pid()", pattern=f"%{marker}%"))
        if self.backend == "mariadb":
            return int(self.scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE :pattern "
                "AND ID <> CONNECTION_ID()", pattern=f"%{marker}%"))
        return 0


@contextlib.contextmanager
def warehouse(backend: str, folder: Path, server_url: str | None) -> Iterator[Warehouse]:
    """A warehouse of the test's own; ``server_url``: the session's PostgreSQL or MariaDB
    database (None for SQLite). Dropped afterwards, with every engine the tasks made."""
    name = f"w_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{name}.db'}"
        engine = sa.create_engine(url)
        try:
            yield Warehouse(backend, url, engine)
        finally:
            sql_engines.dispose_all()
            engine.dispose()
        return
    assert server_url is not None
    server = sa.make_url(server_url)
    if backend == "postgres":
        admin = sa.create_engine(server.set(drivername="postgresql+psycopg"),
                                 isolation_level="AUTOCOMMIT")
        create, drop = f'CREATE SCHEMA "{name}"', f'DROP SCHEMA IF EXISTS "{name}" CASCADE'
        own = server.set(drivername="postgresql", query={"options": f"-csearch_path={name}"})
    else:
        admin = sa.create_engine(server.set(drivername="mysql+pymysql"))
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
        own = server.set(drivername="mysql", database=name)
    with admin.connect() as conn:
        conn.exec_driver_sql(create)
    url = own.render_as_string(hide_password=False)
    engine = sa.create_engine(sql_engines.sqlalchemy_url(url))
    try:
        yield Warehouse(backend, url, engine)
    finally:
        sql_engines.dispose_all()
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(drop)
        admin.dispose()


@contextlib.contextmanager
def postgres_with_password(server_url: str, password: str) -> Iterator[Warehouse]:
    """A PostgreSQL database of the test's own, its URL carrying ``password`` (URL-quoted;
    the server trusts loopback connections, so any password does)."""
    with scratch_postgres(server_url, prefix="orch_wh") as url:
        own = sa.make_url(url).set(drivername="postgresql", password=password)
        engine = sa.create_engine(own.set(drivername="postgresql+psycopg"))
        try:
            yield Warehouse("postgres", own.render_as_string(hide_password=False), engine)
        finally:
            engine.dispose()
