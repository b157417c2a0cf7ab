"""Every limit on what a user may name or submit, in one place, with the database column
widths derived from them (``store/tables.py`` reads these), so that whatever the
validators accept fits the schema on SQLite and PostgreSQL alike.

The settings (``ORCH_MAX_PARAMS_BYTES``, ``ORCH_MAX_RESULT_BYTES``, ``ORCH_MAX_MAP_ITEMS``)
choose a value within these; the constants here are what the schema is built for.
"""

from __future__ import annotations

from orchestrator.settings import MAP_ITEMS_CEILING, QUEUE_PATTERN

__all__ = ["MAP_ITEMS_CEILING", "QUEUE_PATTERN"]

MAX_ID_LENGTH = 100
"""Longest DAG, task or param id."""

MAX_INSTANCE_ID_LENGTH = MAX_ID_LENGTH + len(f"[{MAP_ITEMS_CEILING - 1}]")
"""Longest task instance id: a mapped task's id with the largest index it may reach."""

TASK_ID_COLUMN = 128
"""Width of the ``task_id`` columns (migration 0008 widened them from 100)."""

DAG_ID_COLUMN = 100
RUN_ID_LENGTH = 32
"""Run ids are uuid4 hex: 32 lower-case hex digits."""

MAX_IDEMPOTENCY_KEY_LENGTH = 200
"""Longest idempotency key (its column's width)."""

WORKER_COLUMN = 200
ERROR_TYPE_COLUMN = 200
"""Worker names and error type names longer than their columns are cut to fit."""

MAX_PARAMS_DEPTH = 32
"""Deepest nesting of lists and objects in a run's params (a param's own value is 1 deep
when it is a list or an object). Deep enough for any real configuration, and far below
where recursive JSON encoders and decoders (Python's, PostgreSQL's) give up."""

MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
"""Integers in params are 64-bit: what every JSON reader that has integers reads exactly
(Go, Java, Rust, SQLite's JSON functions), and far below Python's 4300-digit limit on
turning an int into text, which made a huge integer escape as a ValueError."""

MAX_RUNS_PAGE = 500
"""Most runs one page of the run list (API, run view) may ask for."""

MAX_PROBLEMS_LISTED = 20
"""A ParamsError names this many problems, then how many more there were."""

assert MAX_INSTANCE_ID_LENGTH <= TASK_ID_COLUMN, "a mapped instance id must fit its column"
assert MAX_ID_LENGTH <= DAG_ID_COLUMN
