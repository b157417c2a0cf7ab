"""SQLAlchemy engines for sql tasks: one per URL per process, made from the URL users write.

``postgresql://`` and ``postgres://`` use psycopg (v3), ``mysql://`` and ``mariadb://``
PyMySQL: the drivers this package installs (SQLAlchemy's own defaults, psycopg2 and
mysqlclient, are not). A URL naming its driver (``postgresql+psycopg2://``) is used as
written. Engines ping a pooled connection before handing it out (``pool_pre_ping``), so
a database restarted between two tasks costs a reconnect, not a failed attempt.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from orchestrator import errors
from orchestrator.kinds.sql_errors import not_retryable

DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
           "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
DEFAULT_CONNECT_TIMEOUT = 10.0
APPLICATION_NAME = "orchestrator sql task"
"""What PostgreSQL shows for our sessions (``pg_stat_activity.application_name``)."""
MAX_ENGINES = 64

_lock = threading.Lock()
_engines: dict[tuple[str, float], sa.Engine] = {}
_pid = os.getpid()


def sqlalchemy_url(url: str, name: str = "") -> sa.URL:
    """``url`` with the driver this package installs for its scheme."""
    scheme, sep, rest = url.strip().partition("://")
    where = f"connection {name!r}" if name else "the connection"
    if not sep:
        raise not_retryable(errors.SqlTaskFailed(f"{where} is not a URL (scheme://...)"))
    try:
        return sa.make_url(f"{DRIVERS.get(scheme.lower(), scheme)}://{rest}")
    except (sa.exc.ArgumentError, ValueError):
        # Never SQLAlchemy's message: it quotes the whole URL, password and all.
        raise not_retryable(errors.SqlTaskFailed(
            f"{where}: its {scheme[:40]!r} URL cannot be read as a database URL")) from None


def engine_for(url: str, *, connect_timeout: float | None = None, name: str = "") -> sa.Engine:
    """The engine of ``url`` in this process. A forked child (a prefork worker's) makes
    its own: the parent's pooled connections are the parent's sockets."""
    global _pid
    timeout = connect_timeout or DEFAULT_CONNECT_TIMEOUT
    key = (url, timeout)
    with _lock:
        if _pid != os.getpid():
            for inherited in _engines.values():
                inherited.dispose(close=False)  # leave the parent's sockets to the parent
            _engines.clear()
            _pid = os.getpid()
        engine = _engines.get(key)
        if engine is None:
            if len(_engines) >= MAX_ENGINES:
                _engines.pop(next(iter(_engines))).dispose()
            engine = _engines[key] = _create(url, timeout, name)
        return engine


def dispose_all() -> None:
    """Close every engine of this process (tests, and a process that is ending)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create(url: str, timeout: float, name: str) -> sa.Engine:
    target = sqlalchemy_url(url, name)
    backend = target.get_backend_name()
    given = set(target.query)
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        # libpq counts whole seconds and treats anything under 2 as 2.
        connect_args = {"connect_timeout": max(2, math.ceil(timeout)),
                        "application_name": APPLICATION_NAME}
    elif backend in ("mysql", "mariadb"):
        connect_args = {"connect_timeout": max(1, math.ceil(timeout))}
    elif backend == "sqlite":
        connect_args = {"timeout": timeout}  # how long to wait for another writer's lock
    try:
        engine = sa.create_engine(target, pool_pre_ping=True, connect_args={
            k: v for k, v in connect_args.items() if k not in given})  # the URL's own win
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        where = f"connection {name!r}" if name else "the connection"
        raise not_retryable(errors.SqlTaskFailed(
            f"{where}: this worker has no database driver for {target.drivername!r} "
            f"({type(exc).__name__})")) from None
    if backend == "sqlite":
        _one_transaction(engine)
    return engine


def _one_transaction(engine: sa.Engine) -> None:
    """SQLite through Python's sqlite3 begins a transaction only before an INSERT, UPDATE
    or DELETE (not before DDL or a SELECT): begin every one ourselves, so an attempt is
    one transaction whatever it runs (SQLAlchemy's documented recipe)."""

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")
