"""What a failed sql task says, and whether a retry can help.

The message is the database's own (PostgreSQL's SQLSTATE, MySQL's error number, SQLite's
result code, then its text), named by connection; never SQLAlchemy's wrapper text, which
quotes the bound values, and never the URL (a password in it is replaced, should a
driver ever quote it).

Not retried (``retryable = False``: the same statement on the same data fails the same
way): syntax errors, unknown tables and columns, missing privileges, constraint
violations, bad values, a missing bound parameter, an unknown driver. Retried: lost or
refused connections, deadlocks and serialization failures, lock waits, a server shutting
down or out of resources, a statement cancelled by someone else.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orchestrator import errors
from orchestrator.execution.connections import Connection

MAX_MESSAGE_CHARS = 4000

PG_RETRYABLE_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})
"""SQLSTATE classes: connection exception, transaction rollback (deadlock, serialization),
insufficient resources, operator intervention (shutdown, cancel), system error, internal."""
PG_RETRYABLE_STATES = frozenset({"55P03", "55006", "25006"})
"""Lock not available, object in use, read-only transaction (a standby during failover)."""
PG_CANCELLED = "57014"

MYSQL_RETRYABLE = frozenset({
    1021, 1037, 1038, 1040, 1041, 1053, 1114, 1135, 1152, 1154, 1155, 1156, 1157, 1158,
    1159, 1160, 1161, 1180, 1181, 1205, 1213, 1290, 1317, 1836, 1927, 1969, 3024, 4031})
"""Disk full, out of memory, too many connections, shutdown, table full, network errors,
lock wait timeout, deadlock, read-only server, interrupted, killed, statement timeouts.
Numbers from 2000 are the client's own (cannot connect, server gone): retried too."""
MYSQL_CANCELLED = frozenset({1317, 1969, 3024})
"""KILL QUERY, MariaDB's max_statement_time, MySQL's max_execution_time."""

SQLITE_RETRYABLE = frozenset({5, 6, 7, 9, 10, 13, 14, 15})
"""Busy, locked, out of memory, interrupted, I/O error, disk full, cannot open, lock
protocol (primary result codes)."""
SQLITE_INTERRUPT = 9


def not_retryable(exc: errors.OrchestratorError) -> errors.OrchestratorError:
    """``exc``, marked as an error a retry cannot help: the worker fails the task at once."""
    exc.retryable = False  # type: ignore[attr-defined]
    return exc


def failure(exc: sa.exc.SQLAlchemyError, conn: Connection, backend: str) -> errors.SqlTaskFailed:
    """The task failure for ``exc``, raised by SQLAlchemy on ``conn``."""
    if isinstance(exc, sa.exc.DBAPIError):
        detail, retry = database_message(exc), retryable(exc)
    elif isinstance(exc, sa.exc.StatementError):  # refused before it reached the database
        detail, retry = _bare(exc.orig if exc.orig is not None else exc), False
    else:
        detail = _bare(exc)
        retry = not isinstance(exc, sa.exc.ArgumentError | sa.exc.CompileError
                               | sa.exc.InvalidRequestError)
    out = errors.SqlTaskFailed(scrub(f"connection {conn.name!r} ({backend}): {detail}", conn))
    if not retry:
        not_retryable(out)
    return out


def _bare(exc: BaseException) -> str:
    """The message alone: a SQLAlchemy error's ``str`` adds the statement, its bound values
    and a link."""
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return first.strip().split("\n", 1)[0] or type(exc).__name__


def database_message(exc: sa.exc.DBAPIError) -> str:
    orig: Any = exc.orig
    number, sqlstate = _mysql_number(orig), getattr(orig, "sqlstate", None)
    if number is not None:
        text = f"{number}{f' ({sqlstate})' if sqlstate else ''}: {orig.args[1]}"
    elif sqlstate:
        text = f"{sqlstate}: {_postgres_message(orig)}"
    elif getattr(orig, "sqlite_errorname", None):
        text = f"{str(orig).strip()} ({orig.sqlite_errorname})"
    else:
        text = str(orig).strip()
    text = text or type(orig).__name__
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + " [...]"


def _postgres_message(orig: Any) -> str:
    """The server's message, detail and hint; not psycopg's quote of the statement, which
    for a streamed query is the DECLARE of a cursor the task did not write."""
    diag: Any = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return str(orig).strip()
    parts = [primary]
    parts += [f"{label}: {value}" for label, value in (
        ("DETAIL", diag.message_detail), ("HINT", diag.message_hint)) if value]
    return "\n".join(parts)


def retryable(exc: sa.exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig: Any = exc.orig
    number = _mysql_number(orig)  # first: PyMySQL gives a SQLSTATE too, a coarser one
    if number is not None:
        return number >= 2000 or number in MYSQL_RETRYABLE
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate[:2] in PG_RETRYABLE_CLASSES or sqlstate in PG_RETRYABLE_STATES
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in SQLITE_RETRYABLE
    # A driver that names no code: its class says (psycopg's refused connection, say).
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError
                      | sa.exc.InternalError)


def is_cancel(exc: BaseException) -> bool:
    """Whether the database says it stopped the statement (cancelled, interrupted, or
    past its statement timeout)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig: Any = exc.orig
    number = _mysql_number(orig)
    if number is not None:
        return number in MYSQL_CANCELLED
    if getattr(orig, "sqlstate", None) == PG_CANCELLED:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == SQLITE_INTERRUPT


def _mysql_number(orig: Any) -> int | None:
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if (type(orig).__module__.startswith(("pymysql", "MySQLdb")) and len(args) == 2
            and isinstance(args[0], int)):
        return args[0]
    return None


def scrub(text: str, conn: Connection) -> str:
    """``text`` with the connection's URL shown masked and its secrets replaced."""
    text = text.replace(conn.url, conn.masked_url)
    for secret in sorted(set(conn.secrets()), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
