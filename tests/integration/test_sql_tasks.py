"""The sql task kind on real SQLite, PostgreSQL and MariaDB databases, run as a worker
runs a task body (``operators.call``) with its connection in ORCH_CONN_WH: result shapes,
one transaction per attempt, values bound and never formatted, result values as JSON,
the result cap, failures and whether they are retried, the URLs users write."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.execution import operators
from orchestrator.execution.task_context import TaskContext
from orchestrator.kinds import sql_engines
from orchestrator.model import spec, values
from tests.sql_support import MANY_ROWS, Warehouse, warehouse
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_outside_connections")]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
            pytest.param("mariadb", marks=pytest.mark.mariadb)]
NO_ROWS: Any = object()



@pytest.fixture(params=BACKENDS)
def wh(request: pytest.FixtureRequest, tmp_path: Path,
       monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    server = {"sqlite": None, "postgres": "postgres_url", "mariadb": "mariadb_url"}[
        request.param]
    with warehouse(request.param, tmp_path,
                   request.getfixturevalue(server) if server else None) as w:
        monkeypatch.setenv("ORCH_CONN_WH", w.url)
        yield w


def sql(query: str, *names: str, rows: bool = False, conn: str = "wh",
        timeout: float | None = None) -> spec.TaskSpec:
    """A sql task binding each of ``names`` from the run param of that name (and, with
    ``rows``, its rows from the upstream task ``up``)."""
    kwargs: dict[str, Any] = {n: {"kind": "param", "param": n} for n in names}
    if rows:
        kwargs["rows"] = {"kind": "task", "task": "up"}
    return spec.TaskSpec.model_validate({"id": "t", "kind": "sql", "timeout": timeout,
                                         "sql": {"conn": conn, "query": query},
                                         "kwargs": kwargs})


def call(task: spec.TaskSpec, params: dict[str, Any] | None = None, rows: Any = NO_ROWS,
         cap: int | None = 1024 * 1024) -> Any:
    ctx = TaskContext("sql_tests", f"run-{uuid.uuid4().hex[:8]}", "t", 1, params or {},
                      result_cap=cap)
    return operators.call(task, params or {}, {"up": rows}, ctx)


def _fails(task: spec.TaskSpec, params: dict[str, Any] | None = None, rows: Any = NO_ROWS,
           kind: type[Exception] = errors.SqlTaskFailed, cap: int | None = 1024 * 1024,
           ) -> Exception:
    with pytest.raises(kind) as info:
        call(task, params, rows, cap)
    return info.value


def _table(wh: Warehouse) -> None:
    call(sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, "
             "score INTEGER)"))


def test_rows_come_back_as_objects_and_writes_as_rowcounts(wh: Warehouse) -> None:
    ddl = call(sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, "
                   "score INTEGER)"))
    assert ddl == {"rowcount": 0 if wh.backend == "mariadb" else None}
    rows = [{"id": 1, "name": "ada", "score": 10}, {"id": 2, "name": "grace", "score": None},
            {"id": 3, "name": "barbara", "score": 30}]
    insert = sql("INSERT INTO items (id, name, score) VALUES (:id, :name, :score)", rows=True)
    assert call(insert, rows=rows) == {"rowcount": 3}
    assert call(sql("UPDATE items SET score = 0 WHERE id >= :low", "low"),
                {"low": 2}) == {"rowcount": 2}
    assert call(sql("SELECT id, name, score FROM items ORDER BY id")) == [
        {"id": 1, "name": "ada", "score": 10}, {"id": 2, "name": "grace", "score": 0},
        {"id": 3, "name": "barbara", "score": 0}]
    assert call(sql("SELECT id FROM items WHERE id > 100")) == []
    assert call(sql("INSERT INTO items (id, name) VALUES (4, 'edsger') RETURNING id, name")
                ) == [{"id": 4, "name": "edsger"}]
    assert call(sql("DELETE FROM items WHERE id IN (1, 4)")) == {"rowcount": 2}
    if wh.backend == "postgres":  # a query that writes: not through a server-side cursor
        assert call(sql("WITH gone AS (DELETE FROM items WHERE id = 2 RETURNING id) "
                        "SELECT id FROM gone")) == [{"id": 2}]


def test_a_failing_row_rolls_back_the_whole_attempt(wh: Warehouse) -> None:
    _table(wh)
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 1, "name": "again"},
            {"id": 4, "name": "d"}]
    exc = _fails(sql("INSERT INTO items (id, name) VALUES (:id, :name)", rows=True), rows=rows)
    assert getattr(exc, "retryable", True) is False  # the same rows fail the same way
    assert "connection 'wh'" in str(exc)
    assert wh.scalar("SELECT count(*) FROM items") == 0
    assert call(sql("INSERT INTO items (id, name) VALUES (:id, :name)", rows=True),
                rows=rows[:2]) == {"rowcount": 2}  # the connection is fine afterwards


def test_an_empty_rows_list_runs_nothing_and_params_join_every_row(wh: Warehouse) -> None:
    _table(wh)
    insert = sql("INSERT INTO items (id, name, score) VALUES (:id, :name, :score)", "score",
                 rows=True)
    assert call(insert, {"score": 7}, rows=[]) == {"rowcount": 0}
    assert wh.scalar("SELECT count(*) FROM items") == 0
    assert call(insert, {"score": 7}, rows=[{"id": 1, "name": "a", "score": 99},
                                            {"id": 2, "name": "b"}]) == {"rowcount": 2}
    assert wh.rows("SELECT id, score FROM items ORDER BY id") == [(1, 7), (2, 7)]


HOSTILE = [
    "'); DROP TABLE notes; --",
    "Robert'); DROP TABLE notes;--",
    "\"double\" and 'single' and `back` quotes; ''' \"\"\"",
    "back\\slash \\' \\\" \\\\ \\n \\x00",
    "unicode: zażółć gęślą jaźń, 日本語, مرحبا, \u202eevil, 🎉",
    ":other and :name and %s and %(name)s and ? and $1 and {name} and \\:x",
    "x" * 200_000,
]


def test_values_are_bound_never_formatted_into_the_statement(wh: Warehouse) -> None:
    call(sql(f"CREATE TABLE notes (id INTEGER PRIMARY KEY, body {wh.text_type} NOT NULL)"))
    insert_many = sql("INSERT INTO notes (id, body) VALUES (:id, :body)", rows=True)
    assert call(insert_many, rows=[{"id": i, "body": v} for i, v in enumerate(HOSTILE)]
                ) == {"rowcount": len(HOSTILE)}
    one = sql("INSERT INTO notes (id, body) VALUES (:id, :body)", "id", "body")
    for i, value in enumerate(HOSTILE, start=100):
        assert call(one, {"id": i, "body": value}) == {"rowcount": 1}
    stored = dict(wh.rows("SELECT id, body FROM notes"))
    assert [stored[i] for i in range(len(HOSTILE))] == HOSTILE
    assert [stored[i] for i in range(100, 100 + len(HOSTILE))] == HOSTILE
    found = call(sql("SELECT id FROM notes WHERE body = :body ORDER BY id", "body"),
                 {"body": HOSTILE[0]})
    assert found == [{"id": 0}, {"id": 100}]


def test_lists_and_objects_bind_as_json_and_literal_colons_are_escaped(wh: Warehouse) -> None:
    call(sql(f"CREATE TABLE docs (id INTEGER PRIMARY KEY, doc {wh.text_type} NOT NULL, "
             "note VARCHAR(50) NOT NULL)"))
    doc = {"tags": ["a", "b"], "n": 1, "nested": {"ok": True}}
    call(sql("INSERT INTO docs (id, doc, note) VALUES (1, :doc, '100% at 10\\:30')", "doc"),
         {"doc": doc})
    call(sql("INSERT INTO docs (id, doc, note) VALUES (2, :doc, 'x')", "doc"),
         {"doc": [1, "two", None]})
    assert [(json.loads(d), n) for d, n in wh.rows("SELECT doc, note FROM docs ORDER BY id")
            ] == [(doc, "100% at 10:30"), ([1, "two", None], "x")]


NOW_UUID = uuid.UUID("2f1e8a4c-9b7d-4c3e-8f21-0a1b2c3d4e5f")
QUERIES = {
    "postgres": (
        "SELECT CAST(12.50 AS NUMERIC(10, 2)) AS price, CAST(30 AS NUMERIC) AS whole, "
        "CAST('0.1234567890123456789' AS NUMERIC) AS precise, "
        "CAST('NaN' AS NUMERIC) AS dnan, CAST('Infinity' AS DOUBLE PRECISION) AS inf, "
        "TIMESTAMP '2026-12-03 17:58:30.5' AS at, "
        "TIMESTAMPTZ '2026-12-03 17:58:30+01:00' AS aware, DATE '2026-12-03' AS day, "
        "TIME '17:58:30' AS clock, INTERVAL '90 seconds' AS span, "
        "CAST('\\x00ff' AS BYTEA) AS raw, CAST(:id AS UUID) AS id, "
        "CAST('{\"a\": [1, 2]}' AS JSONB) AS doc, ARRAY[1, 2] AS arr, "
        "true AS flag, NULL AS absent"),
    "mariadb": (
        "SELECT CAST(12.50 AS DECIMAL(10, 2)) AS price, CAST(30 AS DECIMAL(10, 0)) AS whole, "
        "CAST('0.1234567890123456789' AS DECIMAL(30, 19)) AS precise, "
        "CAST('2026-12-03 17:58:30.5' AS DATETIME(6)) AS at, "
        "CAST('2026-12-03' AS DATE) AS day, CAST('17:58:30' AS TIME) AS clock, "
        "X'00FF' AS raw, CAST(:id AS UUID) AS id, SUM(2) AS total, NULL AS absent"),
    "sqlite": "SELECT 12.5 AS price, X'00FF' AS raw, :id AS id, 3 AS n, NULL AS absent",
}
EXPECTED: dict[str, dict[str, Any]] = {
    "postgres": {"price": 12.5, "whole": 30, "precise": "0.1234567890123456789",
                 "dnan": "NaN", "inf": "Infinity", "at": "2026-12-03T17:58:30.500000",
                 "day": "2026-12-03", "clock": "17:58:30", "span": 90,
                 "raw": base64.b64encode(b"\x00\xff").decode(), "id": str(NOW_UUID),
                 "doc": {"a": [1, 2]}, "arr": [1, 2], "flag": True, "absent": None},
    "mariadb": {"price": 12.5, "whole": 30, "precise": "0.1234567890123456789",
                "at": "2026-12-03T17:58:30.500000", "day": "2026-12-03",
                "clock": 17 * 3600 + 58 * 60 + 30,  # PyMySQL reads a TIME as a timedelta
                "raw": "AP8=", "id": str(NOW_UUID), "total": 2, "absent": None},
    "sqlite": {"price": 12.5, "raw": "AP8=", "id": str(NOW_UUID), "n": 3, "absent": None},
}


def test_result_values_become_json(wh: Warehouse) -> None:
    [row] = call(sql(QUERIES[wh.backend], "id"), {"id": str(NOW_UUID)})
    aware = row.pop("aware", None)
    assert row == EXPECTED[wh.backend]
    values.check_result([row], 10_000)  # what the worker stores, as it checks it
    if wh.backend == "postgres":  # in the session's time zone, the same instant
        assert dt.datetime.fromisoformat(aware) == dt.datetime(2026, 12, 3, 16, 58, 30,
                                                               tzinfo=dt.UTC)


def test_a_query_past_the_result_cap_stops_reading(wh: Warehouse) -> None:
    marker = f"cap_{uuid.uuid4().hex}"
    exc = _fails(sql(MANY_ROWS[wh.backend].format(marker=marker)), cap=10_000,
                 kind=errors.InvalidResult)
    assert "more than 10000 bytes of rows" in str(exc)
    assert getattr(exc, "retryable", True) is False
    wait_until(lambda: wh.running(marker) == 0, timeout=30,
               what="the server to stop sending the rows")
    assert call(sql("SELECT 1 AS one")) == [{"one": 1}]


def test_the_cap_counts_what_the_worker_stores(wh: Warehouse) -> None:
    _table(wh)
    call(sql("INSERT INTO items (id, name) VALUES (:id, :name)", rows=True),
         rows=[{"id": i, "name": f"näme {i}"} for i in range(50)])
    query = sql("SELECT id, name FROM items ORDER BY id")
    size = len(json.dumps(call(query), ensure_ascii=False, separators=(",", ":"))
               .encode())
    assert len(call(query, cap=size)) == 50
    _fails(query, cap=size - 1, kind=errors.InvalidResult)


def test_failures_name_the_connection_and_say_whether_to_retry(wh: Warehouse) -> None:
    _table(wh)
    cases: list[tuple[spec.TaskSpec, dict[str, Any], Any, str]] = [
        (sql("SELEC id FROM items"), {}, NO_ROWS, "SELEC"),
        (sql("SELECT id FROM no_such_table"), {}, NO_ROWS, "no_such_table"),
        (sql("SELECT id FROM items WHERE id = :missing"), {}, NO_ROWS,
         "A value is required for bind parameter 'missing'"),
        (sql("INSERT INTO items (id) VALUES (:id)", rows=True), {}, "not rows",
         "rows must be a list of objects"),
        (sql("INSERT INTO items (id) VALUES (:id)", rows=True), {}, [{"id": 1}, 2],
         "rows[1] is a int"),
        (sql("SELECT id, name AS id FROM items"), {}, NO_ROWS, "more than one column named"),
    ]
    for task, params, rows, says in cases:
        exc = _fails(task, params, rows)
        assert says in str(exc), str(exc)
        assert getattr(exc, "retryable", True) is False, str(exc)
        assert wh.url not in str(exc)
    missing = _fails(sql("SELECT 1", conn="nowhere"), kind=errors.ConnectionUnavailable)
    assert "ORCH_CONN_NOWHERE" in str(missing)


UNREACHABLE = {"postgres": "postgresql://etl:{pw}@127.0.0.1:{port}/warehouse",
               "mariadb": "mysql://etl:{pw}@127.0.0.1:{port}/warehouse",
               "sqlite": "sqlite:////nonexistent-{pw}/{port}/warehouse.db"}


def test_an_unreachable_database_is_retried_and_its_password_never_shown(
        wh: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    password = f"S3cret-{uuid.uuid4().hex[:8]}"
    url = UNREACHABLE[wh.backend].format(pw=password, port=free_port())
    monkeypatch.setenv("ORCH_CONN_GONE", url)
    exc = _fails(sql("SELECT 1", conn="gone"))
    assert getattr(exc, "retryable", True) is True
    assert "connection 'gone'" in str(exc)
    assert password not in str(exc) or wh.backend == "sqlite"  # SQLite: a path, no secret
    assert url not in str(exc)


@pytest.mark.parametrize(("url", "says"), [
    ("nosuchdb://u:pw-Zq8x@host/db", "no database driver for 'nosuchdb'"),
    ("postgresql://u:pw-Zq8x@host:notaport/db", "cannot be read as a database URL"),
])
def test_a_url_the_worker_cannot_use_is_not_retried(url: str, says: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_ODD", url)
    exc = _fails(sql("SELECT 1", conn="odd"))
    assert says in str(exc)
    assert getattr(exc, "retryable", True) is False
    assert "pw-Zq8x" not in str(exc)


@pytest.mark.postgres
def test_postgres_urls_use_psycopg(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rest = postgres_url.split("://", 1)[1]
    for scheme in ("postgresql", "postgres"):
        monkeypatch.setenv("ORCH_CONN_PG", f"{scheme}://{rest}")
        assert call(sql("SELECT 1 AS one", conn="pg")) == [{"one": 1}]
        assert sql_engines.engine_for(f"{scheme}://{rest}").dialect.driver == "psycopg"
    sql_engines.dispose_all()


@pytest.mark.mariadb
def test_mysql_and_mariadb_urls_use_pymysql(mariadb_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rest = mariadb_url.split("://", 1)[1]
    for scheme in ("mysql", "mariadb"):
        monkeypatch.setenv("ORCH_CONN_MY", f"{scheme}://{rest}")
        assert call(sql("SELECT 1 AS one", conn="my")) == [{"one": 1}]
        assert sql_engines.engine_for(f"{scheme}://{rest}").dialect.driver == "pymysql"
    sql_engines.dispose_all()


def test_a_relative_sqlite_path_is_the_workers_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCH_CONN_LOCAL", "sqlite:///local.db")
    call(sql("CREATE TABLE t (x INTEGER)", conn="local"))
    sql_engines.dispose_all()
    assert (tmp_path / "local.db").is_file()
