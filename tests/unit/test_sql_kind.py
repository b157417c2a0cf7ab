"""The sql task kind without a database: YAML and Python DAGs compiled (sql_file beside the
DAG and never outside its folder, the connection name, references that wire
dependencies), values in and out of a statement, the URLs users write, and which driver
errors a retry can help (real driver exception classes, as the drivers raise them)."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import textwrap
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa

from orchestrator import dag, errors, sql_task, task
from orchestrator.authoring import yaml_dags
from orchestrator.kinds import sql_engines, sql_errors, sql_values
from orchestrator.model import spec


def _load(tmp_path: Path, text: str, name: str = "dag.yaml") -> spec.DagSpec:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return yaml_dags.load_file(path)


def _refused(tmp_path: Path, text: str, name: str = "dag.yaml") -> str:
    with pytest.raises(errors.DagError) as info:
        _load(tmp_path, text, name)
    return str(info.value)


def test_yaml_sql_task_with_params_that_wire_dependencies(tmp_path: Path) -> None:
    s = _load(tmp_path, """
        id: d
        params: {day: {type: string, default: "2026-12-01"}}
        tasks:
          - id: extract
            python: mod:extract
          - id: load
            sql:
              conn: warehouse
              query: "INSERT INTO o (id, day, n) VALUES (:id, :day, :n)"
              params: {day: {param: day}, n: 3}
              rows: {task: extract}
            retries: 2
            timeout: 30
        """)
    load = s.task("load")
    assert load.kind == "sql" and load.sql is not None
    assert (load.sql.conn, load.sql.file) == ("warehouse", None)
    assert load.kwargs == {"day": spec.ParamArg(param="day"), "n": spec.ValueArg(value=3),
                           "rows": spec.TaskArg(task="extract")}
    assert load.dependencies == ("extract",)
    assert (load.retries, load.timeout) == (2, 30)


def test_sql_file_is_read_beside_the_dag_file(tmp_path: Path) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "report.sql").write_text("SELECT * FROM o WHERE day = :day\n",
                                                     encoding="utf-8")
    s = _load(tmp_path, """
        id: d
        tasks:
          - id: report
            sql: {conn: warehouse, params: {day: "2026-12-01"}}
            sql_file: queries/report.sql
        """)
    report = s.task("report")
    assert report.sql is not None
    assert report.sql.query == "SELECT * FROM o WHERE day = :day\n"
    assert report.sql.file == "queries/report.sql"
    assert report.kwargs == {"day": spec.ValueArg(value="2026-12-01")}


@pytest.mark.parametrize("where", ["../outside.sql", "/etc/passwd", "sub/../../outside.sql"])
def test_sql_file_outside_the_dags_folder_is_refused(tmp_path: Path, where: str) -> None:
    (tmp_path / "outside.sql").write_text("SELECT 1", encoding="utf-8")
    message = _refused(tmp_path, f"""
        id: d
        tasks:
          - id: report
            sql: {{conn: warehouse}}
            sql_file: {where}
        """, name="dags/dag.yaml")
    assert "outside the DAG's folder" in message


@pytest.mark.parametrize(("body", "says"), [
    ('sql: {query: "SELECT 1"}', "sql.conn"),
    ('sql: {conn: "my-db", query: "SELECT 1"}', "connection name 'my-db' must match"),
    ('sql: {conn: "1st", query: "SELECT 1"}', "connection name '1st' must match"),
    ("sql: {conn: w}", "give exactly one of query"),
    ('sql: {conn: w, query: "SELECT 1", file: x.sql}', "give exactly one of query"),
    ('sql: {conn: w, query: "SELECT 1", limit: 3}', "unknown key(s) ['limit']"),
    ('sql: {conn: w, query: "SELECT :x", params: [1]}', "params must be a mapping"),
    ('sql: {conn: w, query: "SELECT :x", params: {"x y": 1}}', "is not an identifier"),
    ('sql: {conn: w, query: "   "}', "empty"),
    ("sql: SELECT 1", "sql must be a mapping"),
])
def test_bad_sql_bodies_are_refused(tmp_path: Path, body: str, says: str) -> None:
    message = _refused(tmp_path, f"""
        id: d
        tasks:
          - id: q
            {body}
        """)
    assert says in message
    assert "dag.yaml:3" in message  # the file and the task's line


def test_sql_file_without_sql_is_refused(tmp_path: Path) -> None:
    (tmp_path / "q.sql").write_text("SELECT 1", encoding="utf-8")
    message = _refused(tmp_path, """
        id: d
        tasks:
          - id: q
            shell: "true"
            sql_file: q.sql
        """)
    assert "sql_file goes with sql" in message


@task
def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i} for i in range(n)]


def test_python_sql_task_binds_outputs_and_params() -> None:
    @dag(id="py_sql")
    def py_sql(day: str = "2026-12-01") -> None:
        made = _rows(3)
        load = sql_task("load", conn="warehouse", rows=made, params={"day": day},
                        query="INSERT INTO o (id, day) VALUES (:id, :day)", retries=1)
        report = sql_task("report", conn="warehouse", query="SELECT count(*) AS n FROM o")
        load >> report

    load, report = py_sql.spec.task("load"), py_sql.spec.task("report")
    assert load.kind == "sql" and load.sql is not None and load.sql.conn == "warehouse"
    assert load.kwargs == {"day": spec.ParamArg(param="day"),
                           "rows": spec.TaskArg(task="_rows")}
    assert (load.dependencies, load.retries) == (("_rows",), 1)
    assert report.dependencies == ("load",)


def test_python_sql_task_refuses_a_bad_connection_name() -> None:
    with pytest.raises(errors.DagError, match="connection name 'no good' must match"):
        @dag(id="py_bad_conn")
        def bad() -> None:
            sql_task("q", conn="no good", query="SELECT 1")


def test_bound_values() -> None:
    params, rows = sql_values.bound({"day": "d", "tags": ["a", "b"], "doc": {"k": 1}})
    assert params == {"day": "d", "tags": '["a","b"]', "doc": '{"k":1}'} and rows is None
    params, rows = sql_values.bound({"day": "d", "rows": [{"id": 1, "day": "x"}, {"id": 2}]})
    assert rows == [{"id": 1, "day": "d"}, {"id": 2, "day": "d"}]  # params win
    for bad, says in ((None, "got null"), ({"id": 1}, "got a dict"), ([{"id": 1}, [2]],
                                                                      "rows[1] is a list")):
        with pytest.raises(errors.SqlTaskFailed, match=says.replace("[", r"\[")) as info:
            sql_values.bound({"rows": bad})
        assert getattr(info.value, "retryable", True) is False


@pytest.mark.parametrize(("value", "json_value"), [
    (decimal.Decimal("12.50"), 12.5),
    (decimal.Decimal("30"), 30),
    (decimal.Decimal("1E+2"), 100),
    (decimal.Decimal("0.1234567890123456789"), "0.1234567890123456789"),
    (decimal.Decimal("NaN"), "NaN"),
    (decimal.Decimal("sNaN"), "NaN"),
    (decimal.Decimal("-Infinity"), "-Infinity"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (dt.datetime(2026, 12, 3, 17, 58, 30, 500000), "2026-12-03T17:58:30.500000"),
    (dt.datetime(2026, 12, 3, 17, 58, tzinfo=dt.timezone(dt.timedelta(hours=1))),
     "2026-12-03T17:58:00+01:00"),
    (dt.date(2026, 12, 3), "2026-12-03"),
    (dt.time(17, 58, 30), "17:58:30"),
    (dt.timedelta(minutes=90), 5400),
    (dt.timedelta(seconds=1.5), 1.5),
    (b"\x00\xff", "AP8="),
    (memoryview(b"\x01"), "AQ=="),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ({"b", "a"}, ["a", "b"]),
    ([decimal.Decimal("1.5"), (dt.date(2026, 1, 1),)], [1.5, ["2026-01-01"]]),
    ({"k": decimal.Decimal("2")}, {"k": 2}),
    (True, True),
    (None, None),
])
def test_result_values_as_json(value: Any, json_value: Any) -> None:
    assert sql_values.json_value(value) == json_value
    assert type(sql_values.json_value(value)) is type(json_value)


@pytest.mark.parametrize(("url", "driver"), [
    ("postgresql://u:p@h/db", "postgresql+psycopg"),
    ("postgres://u:p@h/db", "postgresql+psycopg"),
    ("POSTGRESQL://u:p@h/db", "postgresql+psycopg"),
    ("postgresql+psycopg2://u:p@h/db", "postgresql+psycopg2"),
    ("mysql://u:p@h/db", "mysql+pymysql"),
    ("mariadb://u:p@h/db", "mariadb+pymysql"),
    ("sqlite:///w.db", "sqlite"),
])
def test_urls_use_the_installed_drivers(url: str, driver: str) -> None:
    assert sql_engines.sqlalchemy_url(url).drivername == driver


def test_an_unreadable_url_never_shows_its_password() -> None:
    with pytest.raises(errors.SqlTaskFailed) as info:
        sql_engines.sqlalchemy_url("postgresql://u:pw-Zq8x@h:port/db", "warehouse")
    assert "connection 'warehouse'" in str(info.value) and "pw-Zq8x" not in str(info.value)
    assert getattr(info.value, "retryable", True) is False


def _wrapped(orig: Exception) -> sa.exc.DBAPIError:
    wrapped = sa.exc.DBAPIError.instance("SELECT 1", {}, orig, Exception)
    assert isinstance(wrapped, sa.exc.DBAPIError)
    return wrapped


def _sqlite_error(statement: str) -> Exception:
    with sqlite3.connect(":memory:") as db, pytest.raises(sqlite3.Error) as info:
        db.executescript(statement)
    return info.value


@pytest.mark.parametrize(("orig", "retry"), [
    (psycopg.errors.lookup("42601")("syntax error"), False),
    (psycopg.errors.lookup("42P01")("no such table"), False),
    (psycopg.errors.lookup("23505")("duplicate key"), False),
    (psycopg.errors.lookup("28P01")("password authentication failed"), False),
    (psycopg.errors.lookup("40P01")("deadlock detected"), True),
    (psycopg.errors.lookup("40001")("could not serialize"), True),
    (psycopg.errors.lookup("55P03")("lock not available"), True),
    (psycopg.errors.lookup("57P01")("admin shutdown"), True),
    (psycopg.OperationalError("connection refused"), True),
    (pymysql.err.ProgrammingError(1064, "syntax"), False),
    (pymysql.err.OperationalError(1054, "Unknown column"), False),
    (pymysql.err.IntegrityError(1062, "Duplicate entry"), False),
    (pymysql.err.OperationalError(1213, "Deadlock found"), True),
    (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), True),
    (pymysql.err.OperationalError(2003, "Can't connect"), True),
    (pymysql.err.OperationalError(2013, "Lost connection"), True),
    (_sqlite_error("SELEC 1"), False),
    (_sqlite_error("SELECT * FROM nope"), False),
    (_sqlite_error("CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1), (1)"), False),
])
def test_which_driver_errors_are_retried(orig: Exception, retry: bool) -> None:
    assert sql_errors.retryable(_wrapped(orig)) is retry


@pytest.mark.parametrize(("orig", "cancel"), [
    (psycopg.errors.lookup("57014")("canceling statement due to statement timeout"), True),
    (pymysql.err.OperationalError(1317, "Query execution was interrupted"), True),
    (pymysql.err.OperationalError(1969, "max_statement_time exceeded"), True),
    (pymysql.err.OperationalError(1213, "Deadlock found"), False),
    (psycopg.errors.lookup("40P01")("deadlock detected"), False),
])
def test_which_errors_say_the_statement_was_stopped(orig: Exception, cancel: bool) -> None:
    assert sql_errors.is_cancel(_wrapped(orig)) is cancel
