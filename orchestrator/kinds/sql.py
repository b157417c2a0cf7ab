"""The ``sql`` task kind: one statement on a named connection, through SQLAlchemy.

Each attempt is one transaction (``BEGIN`` ... ``COMMIT``): a statement that fails rolls
back everything the attempt did, so a retry starts from where the first try did (an
``executemany`` whose third row breaks a constraint leaves no row). The connection's URL
is read where the task runs (``ORCH_CONN_<NAME>`` or the connections file); it is never
in a result, an error or a log line, which name the connection instead.

Values. The statement names its values ``:name`` and they are sent as bound parameters,
never formatted into its text: each ``params`` entry is one, and ``rows`` (a list of
objects, an upstream task's result, say) runs the statement once per row, the ``params``
added to each (a param wins over a row's key of the same name). An empty ``rows`` runs
nothing. A colon the statement means literally is written ``\\:`` (``'10\\:30'``);
PostgreSQL's ``::type`` casts need no escaping. Lists and objects bind as JSON text;
see :mod:`~orchestrator.kinds.sql_values` for how result values become JSON (decimals,
dates and times, bytes, UUIDs, ...).

Results.

- A statement that returns rows (``SELECT``, ``... RETURNING``) gives them as a JSON list
  of objects, column name -> value, in the order the database returns them. They are
  fetched in batches and counted as they come: past the worker's result cap
  (ORCH_MAX_RESULT_BYTES, also under ``Dag.test``) the task fails (InvalidResult, not
  retried) without reading the rest. PostgreSQL and MySQL read a plain query
  (``SELECT``/``WITH``/``VALUES``/``TABLE`` writing nothing) through a server-side cursor,
  so even its client does not hold the whole result.
- Any other statement gives ``{"rowcount": n}``, the rows it changed (an ``executemany``:
  the total over its rows), or ``{"rowcount": null}`` when the database gives no count
  (PostgreSQL's and SQLite's DDL).

Timeouts. The task's ``timeout`` counts from when the attempt starts running it, and the
database stops the statement (:mod:`~orchestrator.kinds.sql_cancel`): PostgreSQL by a
cancel request and ``statement_timeout``, MariaDB by ``KILL QUERY`` and
``max_statement_time`` (MySQL: ``max_execution_time``), SQLite by ``interrupt()``. In a
worker that happens at the deadline, when Celery's soft time limit interrupts the
driver, or at most a second later for what a signal cannot interrupt (SQLite's C loop).
The attempt fails with TaskTimeout ("exceeded its timeout of N s") and is retried like
any timeout. No statement outlives its attempt on the server.

Failures are SqlTaskFailed with the database's own message; which are retried is in
:mod:`~orchestrator.kinds.sql_errors` (syntax errors, unknown tables, constraint
violations are not; lost connections, deadlocks, lock waits are). A connection that
cannot be found is ConnectionUnavailable.

Backends: SQLite (``sqlite:///path.db``), PostgreSQL (``postgresql://``, through
psycopg 3), MySQL and MariaDB (``mysql://``, ``mariadb://``, through PyMySQL); any other
SQLAlchemy URL whose driver the worker has installed runs too, with Celery's soft time
limit as its only timeout.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from orchestrator import errors
from orchestrator.execution import task_context
from orchestrator.kinds import sql_cancel, sql_errors, sql_values
from orchestrator.kinds.sql_engines import engine_for
from orchestrator.model import spec
from orchestrator.model.secret_spec import SecretArg
from orchestrator.settings import LimitSettings

__all__ = ["engine_for", "run"]

log = logging.getLogger(__name__)

_FIRST_WORD = re.compile(r"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*(\w+)", re.DOTALL)
_READS = frozenset({"select", "with", "values", "table"})
_WRITES = re.compile(r"\b(?:insert|update|delete|merge|into|call|copy|lock)\b", re.IGNORECASE)
"""A query with any of these words is not streamed (PostgreSQL declares a server-side
cursor only for a query that writes nothing): it is read whole, then capped."""


def run(task: spec.TaskSpec, values: dict[str, Any], ctx: task_context.TaskContext,
        secret: Callable[[SecretArg], str]) -> Any:
    """Run ``task``'s statement with its bound ``values`` (the task's kwargs)."""
    if task.sql is None:
        raise errors.OrchestratorError(f"task {task.id!r} is not a sql task")
    started = time.monotonic()
    deadline = None if task.timeout is None else started + task.timeout
    conn = ctx.connection(task.sql.conn)
    params, rows = sql_values.bound(values)
    cap = ctx.result_cap if ctx.result_cap is not None else LimitSettings().max_result_bytes
    engine = engine_for(conn.url, name=conn.name)
    try:
        result = _attempt(engine, task, params, rows, deadline, cap)
    except sa.exc.SQLAlchemyError as exc:  # connecting, or a statement the database refused
        raise sql_errors.failure(exc, conn, _backend(engine)) from None
    log.info("sql on connection %r (%s): %s in %.3f s", conn.name, _backend(engine),
             _outcome(result), time.monotonic() - started)
    return result


def _backend(engine: sa.Engine) -> str:
    # Known once connected: a mysql:// URL may well be a MariaDB server.
    return "mariadb" if getattr(engine.dialect, "is_mariadb", False) else engine.dialect.name


def _attempt(engine: sa.Engine, task: spec.TaskSpec, params: dict[str, Any],
             rows: list[dict[str, Any]] | None, deadline: float | None, cap: int) -> Any:
    assert task.sql is not None
    with engine.connect() as conn:
        watchdog = sql_cancel.Watchdog(engine, conn, deadline)
        reset = False
        try:
            left = None if deadline is None else _left(task, deadline)
            transaction = conn.begin()
            try:
                if left is not None:
                    reset = sql_cancel.limit_statements(conn, left)
                out = _statement(conn, task.sql.query, params, rows, cap, watchdog)
                transaction.commit()
                return out
            except sa.exc.SQLAlchemyError as exc:
                if not watchdog.cancelled:
                    _rollback(conn, transaction)
                if watchdog.timed_out or (deadline is not None and sql_errors.is_cancel(exc)
                                          and time.monotonic() >= deadline):
                    raise _timeout(task) from None
                raise
            except BaseException:
                # Stopped midway (a time limit, too many rows): stop the statement on the
                # server first, or a rollback would wait for it to end.
                watchdog.cancel()
                raise
        finally:
            watchdog.stop()
            if watchdog.cancelled:
                conn.invalidate()  # a cancel may still be on its way: never pool it
            elif reset:
                _unlimit(conn)


def _statement(conn: sa.Connection, query: str, params: dict[str, Any],
               rows: list[dict[str, Any]] | None, cap: int,
               watchdog: sql_cancel.Watchdog) -> Any:
    statement = sa.text(query)
    if rows is not None:
        if not rows:  # SQLAlchemy would run it once, with no values at all
            return {"rowcount": 0}
        return {"rowcount": _count(conn.execute(statement, rows))}
    options = ({"stream_results": True, "max_row_buffer": sql_values.BATCH_ROWS}
               if _streams(conn.dialect, query) else {})
    result = conn.execute(statement, params, execution_options=options)
    try:
        if not result.returns_rows:
            return {"rowcount": _count(result)}
        try:
            return sql_values.collect(result, cap)
        except sql_values.ResultTooBig:
            watchdog.cancel()  # the server would go on sending the rest
            sql_cancel.drain(result, conn.dialect.name)
            raise
    finally:
        result.close()


def _streams(dialect: sa.Dialect, query: str) -> bool:
    if not dialect.supports_server_side_cursors:
        return False
    first = _FIRST_WORD.match(query)
    return (first is not None and first.group(1).lower() in _READS
            and not _WRITES.search(query))


def _left(task: spec.TaskSpec, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:  # connecting took it all
        raise _timeout(task)
    return left


def _timeout(task: spec.TaskSpec) -> errors.TaskTimeout:
    assert task.sql is not None
    return errors.TaskTimeout(f"exceeded its timeout of {task.timeout} s (the statement "
                              f"on connection {task.sql.conn!r} was cancelled)")


def _rollback(conn: sa.Connection, transaction: sa.RootTransaction) -> None:
    try:
        transaction.rollback()
    except sa.exc.SQLAlchemyError:  # the connection is gone: the server rolls back
        conn.invalidate()


def _unlimit(conn: sa.Connection) -> None:
    try:
        sql_cancel.unlimit(conn)
    except sa.exc.SQLAlchemyError:  # not reset: not pooled either
        conn.invalidate()


def _count(result: sa.CursorResult[Any]) -> int | None:
    return result.rowcount if result.rowcount >= 0 else None


def _outcome(result: Any) -> str:
    if isinstance(result, list):
        return f"{len(result)} row{'s' * (len(result) != 1)}"
    return f"rowcount {result.get('rowcount')}"
