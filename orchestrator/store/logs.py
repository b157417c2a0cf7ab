"""Attempt logs: chunks a worker appends while the attempt runs, read by sequence number.

A chunk is written only while its attempt is running (``statements.APPEND_LOG``), so a
worker that was cut off and taken over cannot add lines after the lost-worker marker
the takeover wrote; the reader resumes after the last ``seq`` it saw.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from orchestrator import errors
from orchestrator.model import records
from orchestrator.model.states import AttemptOutcome
from orchestrator.store import statements as sql


def clean(data: str) -> str:
    """Text as both databases store it: PostgreSQL refuses NUL, and UTF-8 has no lone
    surrogates (a ``surrogateescape``-decoded byte), so both are shown escaped."""
    if "\x00" in data:
        data = data.replace("\x00", "\\x00")
    try:
        data.encode("utf-8")
    except UnicodeEncodeError:
        data = data.encode("utf-8", "backslashreplace").decode("utf-8")
    return data


def append(conn: Connection, run_id: str, task_id: str, attempt: int, seq: int, data: str,
           now: dt.datetime) -> bool:
    return conn.execute(sql.APPEND_LOG, {"b_run": run_id, "b_task": task_id,
                                         "b_attempt": attempt, "b_seq": seq,
                                         "b_now": now, "b_data": clean(data)}).first() is not None


def close_lost(conn: Connection, run_id: str, task_id: str, attempt: int,
               now: dt.datetime) -> None:
    """End a lost attempt's log with the lost-worker marker."""
    conn.execute(sql.LOST_MARKER, {"b_run": run_id, "b_task": task_id, "b_attempt": attempt,
                                   "b_now": now})


def _missing(conn: Connection, run_id: str, task_id: str, what: str) -> errors.NotFound:
    """The most specific error for an attempt that is not there."""
    if conn.execute(sql.TASK_EXISTS, {"b_run": run_id, "b_task": task_id}).first() is None:
        if conn.execute(sql.RUN_EXISTS, {"b_run": run_id}).first() is None:
            return errors.UnknownRun(f"no run {run_id!r}")
        return errors.UnknownTask(f"run {run_id!r} has no task {task_id!r}")
    return errors.UnknownAttempt(f"task {task_id!r} of run {run_id!r} has {what}")


def outcome(conn: Connection, run_id: str, task_id: str,
            attempt: int | None) -> tuple[int, AttemptOutcome]:
    """The attempt (the latest when None) and how it ended so far."""
    key = {"b_run": run_id, "b_task": task_id}
    if attempt is None:
        attempt = conn.execute(sql.LATEST_ATTEMPT, key).scalar()
        if attempt is None:
            raise _missing(conn, run_id, task_id, "no attempt yet")
    found = conn.execute(sql.ATTEMPT_OUTCOME, {**key, "b_attempt": attempt}).scalar()
    if found is None:
        raise _missing(conn, run_id, task_id, f"no attempt {attempt}")
    return attempt, AttemptOutcome(found)


def read(conn: Connection, run_id: str, task_id: str, attempt: int | None, *, after: int,
         limit: int) -> tuple[int, list[records.LogChunk]]:
    if attempt is not None and attempt < 1:
        raise errors.InvalidArgument(f"attempt numbers start at 1, got {attempt}")
    if after < 0 or not 1 <= limit <= 10_000:
        raise errors.InvalidArgument(f"after must be 0 or more and limit 1 to 10000, got "
                                     f"after={after}, limit={limit}")
    attempt, _ = outcome(conn, run_id, task_id, attempt)
    rows = conn.execute(sql.LOG_CHUNKS, {"b_run": run_id, "b_task": task_id,
                                         "b_attempt": attempt, "b_after": after,
                                         "b_limit": limit}).all()
    return attempt, [records.LogChunk(seq=r.seq, at=r.at, data=r.data) for r in rows]
