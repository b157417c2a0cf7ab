"""A sql task's timeout stops its statement on the database (PostgreSQL, MariaDB and
SQLite), for one statement and for an executemany; a Celery-style soft time limit (a
signal raising in the main thread) does too; so does ``Dag.test``'s. Engines are per
process: a forked child never uses its parent's pooled connections."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from orchestrator import dag, errors, sql_task
from orchestrator.execution import operators
from orchestrator.execution.task_context import TaskContext
from orchestrator.model import spec
from tests.sql_support import SLOW, Warehouse, warehouse
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_outside_connections")]

PG = pytest.param("postgres", marks=pytest.mark.postgres)
MARIADB = pytest.param("mariadb", marks=pytest.mark.mariadb)
SLEEP_ROW = {"postgres": "INSERT INTO t (id) SELECT :id FROM pg_sleep(0.4) /* {marker} */",
             "mariadb": "INSERT INTO t (id) VALUES (:id + SLEEP(0.4)) /* {marker} */"}



@contextlib.contextmanager
def _warehouse(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    server = {"sqlite": None, "postgres": "postgres_url", "mariadb": "mariadb_url"}[backend]
    with warehouse(backend, tmp_path,
                   request.getfixturevalue(server) if server else None) as w:
        monkeypatch.setenv("ORCH_CONN_WH", w.url)
        yield w


@pytest.fixture(params=["sqlite", PG, MARIADB])
def wh(request: pytest.FixtureRequest, tmp_path: Path,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    with _warehouse(request.param, request, tmp_path, monkeypatch) as w:
        yield w


@pytest.fixture(params=[PG, MARIADB])
def server_wh(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """PostgreSQL or MariaDB: a server that may go on running what a client gave up."""
    with _warehouse(request.param, request, tmp_path, monkeypatch) as w:
        yield w


def _task(query: str, timeout: float | None = None, rows: bool = False) -> spec.TaskSpec:
    kwargs = {"rows": {"kind": "task", "task": "up"}} if rows else {}
    return spec.TaskSpec.model_validate({"id": "t", "kind": "sql", "timeout": timeout,
                                         "sql": {"conn": "wh", "query": query},
                                         "kwargs": kwargs})


def _call(task: spec.TaskSpec, rows: Any = None) -> Any:
    ctx = TaskContext("sql_tests", f"run-{uuid.uuid4().hex[:8]}", "t", 1, {},
                      result_cap=1024 * 1024)
    return operators.call(task, {}, {"up": rows}, ctx)


def _nothing_left_running(wh: Warehouse, marker: str) -> None:
    wait_until(lambda: wh.running(marker) == 0, timeout=10,
               what=f"the server to stop the statement {marker}")


def test_the_timeout_cancels_the_statement_on_the_database(wh: Warehouse) -> None:
    marker = f"slow_{uuid.uuid4().hex}"
    with pytest.raises(errors.TaskTimeout) as info:
        _call(_task(SLOW[wh.backend].format(marker=marker), timeout=1.0))
    assert "exceeded its timeout of 1.0 s" in str(info.value)
    assert getattr(info.value, "retryable", True) is True  # retried like any timeout
    _nothing_left_running(wh, marker)
    assert _call(_task("SELECT 1 AS one", timeout=5.0)) == [{"one": 1}]


def test_the_timeout_counts_for_the_whole_executemany(server_wh: Warehouse) -> None:
    """Each row's statement is well within the timeout; the ten together are not."""
    wh = server_wh
    _call(_task("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    marker = f"rows_{uuid.uuid4().hex}"
    with pytest.raises(errors.TaskTimeout):
        _call(_task(SLEEP_ROW[wh.backend].format(marker=marker), timeout=1.0, rows=True),
              rows=[{"id": i} for i in range(10)])
    _nothing_left_running(wh, marker)
    assert wh.scalar("SELECT count(*) FROM t") == 0  # rolled back


class _SoftLimit(Exception):
    """What Celery's soft time limit raises: from a signal handler, in the main thread."""


def test_a_soft_time_limit_also_cancels_the_statement(server_wh: Warehouse) -> None:
    """No task timeout here: the signal alone interrupts the driver's wait, and the
    statement must not run on without its client. (SQLite is left out: a signal handler
    runs only once its C call returns, which is why the task's timeout uses interrupt().)"""
    wh = server_wh
    marker = f"soft_{uuid.uuid4().hex}"

    def limit(signum: int, frame: FrameType | None) -> None:
        raise _SoftLimit

    previous = signal.signal(signal.SIGALRM, limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(_SoftLimit):
            _call(_task(SLOW[wh.backend].format(marker=marker)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    _nothing_left_running(wh, marker)
    assert _call(_task("SELECT 1 AS one")) == [{"one": 1}]


def test_dag_test_times_out_a_sql_task_as_a_worker_does(wh: Warehouse) -> None:
    marker = f"local_{uuid.uuid4().hex}"
    slow = SLOW[wh.backend].format(marker=marker)

    @dag(id="sql_local_timeout")
    def local() -> None:
        sql_task("slow", conn="wh", query=slow, timeout=1.0, retries=1, retry_backoff=0)

    report = local.test(raise_on_failure=False)
    assert [a.error_type for a in report.attempts["slow"]] == ["TaskTimeout", "TaskTimeout"]
    _nothing_left_running(wh, marker)


def test_a_forked_child_makes_its_own_engine(server_wh: Warehouse) -> None:
    """A prefork worker's child must not use its parent's pooled connections: the same
    socket under two processes mixes their answers."""
    query = _task("SELECT pg_backend_pid() AS session" if server_wh.backend == "postgres"
                  else "SELECT CONNECTION_ID() AS session")
    parent = _call(query)
    assert _call(query) == parent  # pooled: the same session again
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its session, then leave without cleaning up
        try:
            os.write(write, str(_call(query)[0]["session"]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = int(f.read() or "-1")
    os.waitpid(pid, 0)
    assert child not in (-1, parent[0]["session"])
    assert _call(query) == parent  # the parent's pooled session is still sound
