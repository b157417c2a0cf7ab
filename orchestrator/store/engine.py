"""Engines tuned per backend, a writer lock for SQLite, and retries of transactions
PostgreSQL aborts or loses with its connection."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from orchestrator import errors

SQLITE_BUSY_TIMEOUT_S = 60.0
WRITE = "orchestrator_write"
"""Execution option: a transaction that will write (SQLite then takes the lock up front)."""


P = ParamSpec("P")
R = TypeVar("R")

TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled
back whole and may simply run again."""
TRANSIENT_RETRIES = 5
SERVER_GOING_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
"""admin_shutdown, crash_shutdown, cannot_connect_now: the server is stopping or starting."""
RECONNECT_FOR_S = 30.0
"""How long a transaction waits for a lost PostgreSQL server to come back (a restart, a
failover, a network cut) before its error is raised."""
RECONNECT_PAUSES_S = (0.05, 0.5)
"""The first and the longest pause between two tries; each pause doubles."""


def _lost_server(exc: DBAPIError) -> bool:
    """PostgreSQL could not be reached, or dropped the connection: the transaction did not
    commit, or (lost during COMMIT) did, which its compare-and-set statements detect when
    it runs again."""
    if not hasattr(exc.orig, "sqlstate"):
        return False  # SQLite's errors have none: no server to lose, and its own busy wait
    state = getattr(exc.orig, "sqlstate", None)
    return exc.connection_invalidated or (isinstance(exc, OperationalError) and (
        state is None or state.startswith("08") or state in SERVER_GOING_SQLSTATES))


def retry_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` (one whole transaction) again when PostgreSQL aborts it as a deadlock
    victim, or loses its connection.

    Deadlocks: two finishing parents lock their shared children in different orders (each
    statement locks rows in index order, and a parent's children are split across
    statements by trigger rule), and PostgreSQL breaks the cycle by rolling one back.
    A lost server is waited for up to ``RECONNECT_FOR_S``: a worker that has run a task
    records its outcome once the database is back, rather than leaving the attempt to be
    taken over and run again (the pool's pre-ping replaces the dead connections)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        aborted, deadline, pause = 0, None, RECONNECT_PAUSES_S[0]
        while True:
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
                    aborted += 1
                    if aborted >= TRANSIENT_RETRIES:
                        raise
                    continue
                if not _lost_server(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + RECONNECT_FOR_S
                if now >= deadline:
                    raise
                time.sleep(min(pause, deadline - now))
                pause = min(pause * 2, RECONNECT_PAUSES_S[1])

    return run


def unreachable(exc: BaseException) -> bool:
    """The database could not be reached: the connection was lost or refused, or SQLite
    stayed locked past its busy timeout. Not a verdict on the values written."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError))


def describe(exc: BaseException, limit: int = 500) -> str:
    """One line for an error: a database error's own message, without the statement and
    parameters SQLAlchemy adds (they hold the values, a whole result say)."""
    text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return line if len(line) <= limit else line[:limit - 3] + "..."


def make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver we install; SQLAlchemy's default would be psycopg2.
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u)
    if u.get_backend_name() != "postgresql":
        raise errors.StoreError(f"unsupported database {u.get_backend_name()!r}: "
                                "use sqlite:/// or postgresql://")
    return create_engine(u, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_engine(u: Any) -> Engine:
    database = u.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # Pooled: opening a connection and setting its PRAGMAs on every transaction cost more
    # than the transaction. Each process builds its own store after any fork.
    pool = {"pool_size": 4, "max_overflow": 8} if database not in ("", ":memory:") else {}
    engine = create_engine(u, **pool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S,
                                                    "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred BEGIN upgrades to a write lock mid-transaction and fails with
        # "database is locked" under concurrent writers (measured: ~50%); IMMEDIATE waits.
        write = conn.get_execution_options().get(WRITE, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class WriterLock:
    """Serialises SQLite writers of this database through ``flock`` on ``<db>-writer.lock``.

    SQLite's own busy handler sleeps 1, 2, 5, 10... ms between retries, so two workers
    finishing tasks together lose milliseconds per collision; a waiter on ``flock`` wakes
    the moment the holder releases. Threads of one process queue on a mutex first
    (``flock`` belongs to the open file, which they share). A no-op for PostgreSQL.
    """

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database or ""
        self._path = (f"{database}-writer.lock"
                      if engine.url.get_backend_name() == "sqlite"
                      and database not in ("", ":memory:") else None)
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._path is None:
            yield
            return
        with self._mutex:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
