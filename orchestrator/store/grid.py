"""Reads for the run view: the runs grid (runs x tasks) and each DAG's latest runs.

The grid is two statements per page, whatever its size: the page of runs (keyset on
``(created_at, id)``, newest first, on ``ix_runs_dag_created_id``, so the 100,000th run
costs what the first does; offset paging is what made Airflow's list time out,
apache/airflow#49800), then every cell of that page in one query. A mapped task's own
row already carries its instances' counts (``map_done``, ``map_failed``, kept by the
transactions that finish them), so the grid reads one row per DAG task and never the
instances: a 10,000-item map costs the grid one row.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, RowMapping, String, and_, bindparam, cast, func, or_, select

from orchestrator import errors
from orchestrator.model.states import RunState
from orchestrator.store.tables import runs, task_instances

ti = task_instances
MAX_LIMIT = 200

_RUN_COLUMNS = (runs.c.id, runs.c.state, runs.c.created_at, runs.c.finished_at,
                runs.c.dag_version, runs.c.total_tasks, runs.c.unfinished)
_newest_first = (runs.c.created_at.desc(), runs.c.id.desc())
_of_dag = runs.c.dag_id == bindparam("b_dag")
_at = bindparam("b_at", type_=runs.c.created_at.type)
# `created_at <= at` is the bound the index is sought with (store/browse.py says why)
_before = and_(runs.c.created_at <= _at, or_(runs.c.created_at < _at,
                                             runs.c.id < bindparam("b_id")))
FIRST_PAGE = select(*_RUN_COLUMNS).where(_of_dag).order_by(*_newest_first).limit(
    bindparam("b_limit"))
LATER_PAGE = select(*_RUN_COLUMNS).where(_of_dag, _before).order_by(*_newest_first).limit(
    bindparam("b_limit"))
_packed = (ti.c.task_id + " " + ti.c.state + " "
           + func.coalesce(cast(ti.c.map_count, String), "") + " "
           + func.coalesce(cast(ti.c.map_done, String), "") + " "
           + func.coalesce(cast(ti.c.map_failed, String), ""))
CELLS = select(ti.c.run_id, func.aggregate_strings(_packed, ",")).where(
    ti.c.run_id.in_(bindparam("b_runs", expanding=True)),
    ti.c.map_parent.is_(None)).group_by(ti.c.run_id)
"""One row per run: its tasks as "id state count done failed", comma-separated (ids
have neither spaces nor commas). Grouped in the database, so 20,000 cells come back as
100 rows: per-row work in Python was most of the page's time."""
RUN = select(*_RUN_COLUMNS).where(runs.c.id == bindparam("b_run"))
RUN_TASKS = select(ti.c.task_id, ti.c.state, ti.c.map_count, ti.c.map_done, ti.c.map_failed,
                   ti.c.attempt).where(ti.c.run_id == bindparam("b_run"),
                                       ti.c.map_parent.is_(None))


class Cell(NamedTuple):
    """One task of one run; for a mapped task, its instances' counts. A tuple, not a
    model: a grid page makes 20,000 of them."""

    state: str
    """A :class:`TaskState` value."""
    map_count: int | None = None
    map_done: int | None = None
    """Instances finished (failed ones included)."""
    map_failed: int | None = None
    attempt: int | None = None
    """Its current attempt number (read for a run's snapshot, not for the grid)."""

    @property
    def counts(self) -> str | None:
        """``"8/10"``: instances succeeded of those the map expanded to."""
        if self.map_count is None:
            return None
        ok = (self.map_done or 0) - (self.map_failed or 0)
        return f"{ok}/{self.map_count}"


@dataclasses.dataclass(frozen=True)
class GridRun:
    id: str
    state: RunState
    created_at: dt.datetime
    finished_at: dt.datetime | None
    dag_version: str | None
    total_tasks: int
    unfinished: int
    cells: dict[str, Cell] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class GridPage:
    runs: list[GridRun]
    next_cursor: str | None
    """The page after this one (older runs), or None on the last page."""


def encode_cursor(run: GridRun) -> str:
    raw = f"{run.created_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, run_id = raw.split("|", 1)
        when = dt.datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidArgument(f"cursor {cursor[:40]!r} is not one this server "
                                     "gave out") from None
    if when.tzinfo is None or len(run_id) != 32:
        raise errors.InvalidArgument(f"cursor {cursor[:40]!r} is not one this server gave out")
    return when, run_id


def _run(r: RowMapping) -> GridRun:
    return GridRun(r["id"], RunState(r["state"]), r["created_at"], r["finished_at"],
                   r["dag_version"], r["total_tasks"], r["unfinished"])


def page(conn: Connection, dag_id: str, *, limit: int, cursor: str | None) -> GridPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidArgument(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    key: dict[str, object] = {"b_dag": dag_id, "b_limit": limit + 1}
    if cursor is None:
        rows = conn.execute(FIRST_PAGE, key).mappings().all()
    else:
        key["b_at"], key["b_id"] = decode_cursor(cursor)
        rows = conn.execute(LATER_PAGE, key).mappings().all()
    found = [_run(r) for r in rows[:limit]]
    by_id = {r.id: r for r in found}
    if by_id:
        plain: dict[str, Cell] = {}  # one shared (immutable) cell per state
        for run_id, packed in conn.execute(CELLS, {"b_runs": list(by_id)}):
            cells = by_id[run_id].cells
            for item in packed.split(","):
                task_id, state, count, done, failed = item.split(" ")
                if count:
                    cells[task_id] = Cell(state, int(count), int(done or 0), int(failed or 0))
                else:
                    cell = plain.get(state)
                    cells[task_id] = cell if cell is not None else plain.setdefault(
                        state, Cell(state))
    more = len(rows) > limit
    return GridPage(found, encode_cursor(found[-1]) if more and found else None)


def recent(conn: Connection, dag_ids: Sequence[str], per_dag: int) -> dict[str, list[GridRun]]:
    """Each DAG's latest ``per_dag`` runs, newest first (no cells): one indexed read each."""
    out: dict[str, list[GridRun]] = {}
    for dag_id in dag_ids:
        rows = conn.execute(FIRST_PAGE, {"b_dag": dag_id, "b_limit": per_dag}).mappings()
        out[dag_id] = [_run(r) for r in rows]
    return out


def snapshot(conn: Connection, run_id: str) -> GridRun:
    """A run's state and one cell per DAG task (with its attempt): what the run page's
    live updates compare, read in two indexed statements."""
    row = conn.execute(RUN, {"b_run": run_id}).mappings().first()
    if row is None:
        raise errors.UnknownRun(f"no run {run_id!r}")
    run = _run(row)
    for task_id, state, count, done, failed, attempt in conn.execute(RUN_TASKS,
                                                                     {"b_run": run_id}):
        run.cells[task_id] = Cell(state, count, done, failed, attempt)
    return run
