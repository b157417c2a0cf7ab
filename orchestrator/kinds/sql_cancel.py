"""A sql task's timeout, enforced by the database: its running statement is stopped there,
not only abandoned in Python.

In a worker, Celery's soft time limit comes at the deadline as a signal, handled between
two bytecodes of the main thread: it interrupts a driver's wait on a socket (psycopg,
PyMySQL), and the attempt then cancels the statement (below) before it rolls back. A
driver blocked in C (SQLite's loop) does not see the signal until the statement ends, and
a statement abandoned on the client runs on, on the server. So:

- a watchdog thread cancels the statement :data:`WATCHDOG_GRACE` after the deadline, the
  database's own way: PostgreSQL's cancel request (psycopg ``cancel_safe``), ``KILL
  QUERY`` of the session from a second connection on MySQL and MariaDB, ``interrupt()``
  on SQLite. Not at the deadline itself: the soft limit's signal, which may come a few
  milliseconds after it, would then land in the worker's recording of the failure
  instead of in the task (where it fails the attempt as a timeout);
- the server is also told the time left (PostgreSQL ``statement_timeout``, for this
  transaction only; MariaDB ``max_statement_time``, MySQL ``max_execution_time``, for the
  session until the attempt resets it), a little past the watchdog's, so it stops the
  statement itself should the worker be killed or hang before it can;
- anything else that stops the attempt midway (the soft time limit, a ``Dag.test``
  timeout, too many rows) cancels the same way before the transaction is rolled back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

WATCHDOG_GRACE = 1.0
"""Seconds past the deadline before the watchdog cancels: what a late soft-limit signal
gets to arrive in (the event loop of the worker's main process sends it)."""
SERVER_MARGIN = 0.5
"""Seconds the server's own limit waits past the watchdog (which goes first: it covers the
whole attempt, the server's limit each statement)."""
CANCEL_TIMEOUT = 10.0


class Watchdog:
    """Cancels ``conn``'s running statement :data:`WATCHDOG_GRACE` after ``deadline``
    (``time.monotonic()``), or when :meth:`cancel` is called; after :meth:`stop`, never.
    A cancel and the end of the attempt take one lock, so a cancel never reaches the
    connection's next user."""

    def __init__(self, engine: sa.Engine, conn: sa.Connection, deadline: float | None) -> None:
        self._cancel = _canceller(engine, conn)
        self._lock = threading.Lock()
        self._over = False
        self._stopped = threading.Event()
        self.cancelled = False
        self.timed_out = False
        if deadline is not None:
            threading.Thread(target=self._watch, args=(deadline,), daemon=True,
                             name="orchestrator-sql-deadline").start()

    def _watch(self, deadline: float) -> None:
        if not self._stopped.wait(max(0.0, deadline + WATCHDOG_GRACE - time.monotonic())):
            self.cancel(timed_out=True)

    def cancel(self, *, timed_out: bool = False) -> None:
        with self._lock:
            if self._over or self.cancelled:
                return
            self.cancelled, self.timed_out = True, timed_out
            if self._cancel is None:
                return
            try:
                self._cancel()
            except Exception as exc:  # the server's own limit is still there
                log.warning("could not cancel the running statement: %s",
                            type(exc).__name__)

    def stop(self) -> None:
        with self._lock:
            self._over = True
        self._stopped.set()


def _canceller(engine: sa.Engine, conn: sa.Connection) -> Callable[[], None] | None:
    raw: Any = conn.connection.dbapi_connection
    backend = engine.dialect.name
    if backend == "sqlite":
        return raw.interrupt  # type: ignore[no-any-return]
    if backend == "postgresql":
        safe = getattr(raw, "cancel_safe", None)
        if safe is not None:
            return lambda: safe(timeout=CANCEL_TIMEOUT)
        return getattr(raw, "cancel", None)
    if backend in ("mysql", "mariadb") and callable(getattr(raw, "thread_id", None)):
        session = int(raw.thread_id())

        def kill() -> None:
            with engine.connect() as other:
                other.execute(sa.text("KILL QUERY :session"), {"session": session})

        return kill
    return None  # another database: Celery's soft time limit is all there is


def limit_statements(conn: sa.Connection, seconds: float) -> bool:
    """Tell the server to stop a statement of this attempt running past ``seconds`` (plus
    the watchdog's grace and :data:`SERVER_MARGIN`). True when the setting outlives the
    transaction (:func:`unlimit` must reset it before the connection goes back to the
    pool)."""
    limit = seconds + WATCHDOG_GRACE + SERVER_MARGIN
    dialect = conn.dialect
    if dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                     {"ms": str(math.ceil(limit * 1000))})
        return False
    if getattr(dialect, "is_mariadb", False):
        conn.execute(sa.text("SET SESSION max_statement_time = :s"), {"s": round(limit, 3)})
        return True
    if dialect.name == "mysql":  # SELECTs only, MySQL's rule; the watchdog covers the rest
        conn.execute(sa.text("SET SESSION max_execution_time = :ms"),
                     {"ms": math.ceil(limit * 1000)})
        return True
    return False


def unlimit(conn: sa.Connection) -> None:
    name = ("max_statement_time" if getattr(conn.dialect, "is_mariadb", False)
            else "max_execution_time")
    conn.exec_driver_sql(f"SET SESSION {name} = DEFAULT")
    conn.rollback()  # ends the transaction that statement began; SET is not in it


def drain(result: sa.CursorResult[Any], backend: str) -> None:
    """After a cancel, read what a MySQL server-side cursor still had in flight (up to the
    error the cancel sent), so closing it does not read the rest of the result."""
    if backend not in ("mysql", "mariadb"):
        return
    cursor = result.cursor
    try:
        while cursor.fetchmany(1000):
            pass
    except Exception:  # the cancel's own error ends it; the connection is dropped next
        return
