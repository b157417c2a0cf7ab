"""The store's base: the engine and one transaction per call, which the facade's parts
(runs and the hot path, schedules, pools, triggers, backfills) share."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Connection, Engine

from orchestrator import errors
from orchestrator.model import notify
from orchestrator.model.compiled import CompiledDag
from orchestrator.store import engine as engine_
from orchestrator.store import schema
from orchestrator.store import statements as sql
from orchestrator.store.cache import ByteLRU
from orchestrator.store.results import RunHeader

CACHED_RUNS = 1000
"""Run headers (params included) a process keeps; params never change after submit."""
CACHED_PARAMS_BYTES = 64 * 1024 * 1024
"""Default bound on their params, as JSON bytes (ORCH_PARAMS_CACHE_BYTES)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreBase:
    """The engine, the writer lock, one transaction per call, and what every part of the
    store reads: run headers and compiled DAG versions, cached per process."""

    def __init__(self, url: str, *, params_cache_bytes: int = CACHED_PARAMS_BYTES) -> None:
        self.url = url
        self.engine: Engine = engine_.make_engine(url)
        self._writer = engine_.WriterLock(self.engine)
        self.headers: ByteLRU[RunHeader] = ByteLRU(CACHED_RUNS, params_cache_bytes)
        self._versions: dict[str, CompiledDag] = {}
        self.alert_rules: tuple[notify.Rule, ...] = ()
        """The global rules (ORCH_NOTIFY_FILE) every DAG's transactions apply."""

    def dispose(self) -> None:
        self.engine.dispose()
        self._writer.close()

    unreachable = staticmethod(engine_.unreachable)
    describe = staticmethod(engine_.describe)

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Connection]:
        with (self._writer.hold() if write else nullcontext()), self.engine.connect() as conn:
            conn.execution_options(**{engine_.WRITE: write})
            with conn.begin():
                yield conn

    # -- schema ----------------------------------------------------------------------------

    def check_schema(self) -> None:
        """Raise :class:`SchemaBehind` (naming ``orchestrator db upgrade``) unless current."""
        schema.check(self.engine)

    def upgrade(self) -> tuple[str | None, str]:
        return schema.upgrade(self.engine)

    def schema_revision(self) -> str | None:
        return schema.current(self.engine)

    @engine_.retry_transient
    def header(self, run_id: str) -> RunHeader:
        """The run's DAG, version and params: read once per run per process."""
        cached = self.headers.get(run_id)
        if cached is not None:
            return cached
        with self._tx(write=False) as conn:
            row = conn.execute(sql.RUN_HEADER, {"b_run": run_id}).first()
        if row is None:
            raise errors.UnknownRun(f"run {run_id!r} is not in the database")
        header = RunHeader(run_id, row.dag_id, row.dag_version, row.params, row.trigger,
                           row.logical_time, row.interval_start, row.interval_end,
                           row.payload)
        # Sized as JSON once per run per process, never on a hit.
        self.headers.put(run_id, header, len(json.dumps(row.params)))
        return header

    @engine_.retry_transient
    def compiled(self, version: str) -> CompiledDag:
        """A stored DAG version, compiled once per process."""
        found = self._versions.get(version)
        if found is None:
            with self._tx(write=False) as conn:
                row = conn.execute(sql.VERSION_OF, {"b_version": version}).first()
            if row is None:
                raise errors.NotFound(f"DAG version {version[:12]} is not in the database")
            found = self._versions.setdefault(
                version, CompiledDag.from_stored(version, row.spec, row.source))
        return found

    def queued_tasks(self, run_id: str) -> list[tuple[str, int]]:
        """The run's queued tasks and their attempts (what to send when it starts)."""
        with self._tx(write=False) as conn:
            return [(r.task_id, r.attempt) for r in conn.execute(sql.QUEUED_TASKS,
                                                                 {"b_run": run_id})]
