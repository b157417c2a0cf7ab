"""sql tasks run by a real worker: the YAML DAG (a .sql file beside it, a row from a task's
result, a run param, a hostile literal) and the Python one (rows from a python task,
params added to each), submitted through the client; the connection, a PostgreSQL
database whose URL carries a password, given to the worker in a connections file. A
refused statement fails once (not retried), a statement past its timeout is stopped on
the server (and a SQLite one blocked in C is interrupted), and neither the URL nor its
password is anywhere in the state database or the broker afterwards (results, errors,
logs), masked where a task printed or returned it. Once on each state database backend."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.security import leaks
from tests.sql_support import Warehouse, postgres_with_password
from tests.support import make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
WAIT_S = 120
SLEEPY_MARK = "sqltest_sleepy"  # in tests/dags/tdag_sql.py
PASSWORD = f"wh-{secrets.token_hex(8)}/+:x@y"


@pytest.fixture
def wh(postgres_url: str) -> Iterator[Warehouse]:
    with postgres_with_password(postgres_url, PASSWORD) as w:
        yield w


@pytest.fixture
def sql_stack(broker_url: str, fresh_url: str, wh: Warehouse,
              tmp_path: Path) -> Iterator[LocalStack]:
    conns = tmp_path / "connections.yaml"
    conns.write_text(f"connections:\n  sqltest_wh: '{wh.url}'\n"
                     f"  sqltest_lite: 'sqlite:///{tmp_path / 'lite.db'}'\n", encoding="utf-8")
    settings = make_settings(broker_url, fresh_url, connections_file=str(conns))
    (tmp_path / "logs").mkdir()
    with LocalStack(settings, workers=1, concurrency=2, log_dir=str(tmp_path / "logs")) as s:
        yield s


def test_sql_dags_run_on_a_worker_and_keep_the_url_to_themselves(
        sql_stack: LocalStack, wh: Warehouse, fresh_url: str, broker_url: str) -> None:
    in_url = urlsplit(wh.url).password or ""
    assert unquote(in_url) == PASSWORD  # as the URL carries it, quoted
    with Client(sql_stack.settings) as client:
        # One after the other: both create the table, and PostgreSQL's CREATE TABLE IF
        # NOT EXISTS is not safe against itself in two transactions at once.
        yaml_run = client.wait(client.submit("sql_yaml", {"tag": "yaml"}), timeout=WAIT_S)
        py_run = client.wait(client.submit("sql_python", {"n": 3, "tag": "py"}),
                             timeout=WAIT_S)
        failures = client.wait(client.submit("sql_failures"), timeout=WAIT_S)
        assert (yaml_run.state, py_run.state) == (RunState.SUCCESS, RunState.SUCCESS)
        hostile = "it's \"quoted\"'); DROP TABLE items; --"
        assert client.result(yaml_run.id, "insert") == {"rowcount": 1}
        assert client.result(yaml_run.id, "report") == [
            {"id": 100, "label": hostile, "tag": "yaml"}]
        assert client.result(py_run.id, "load") == {"rowcount": 3}
        assert client.result(py_run.id, "total") == [{"n": 3, "first": "item 1", "last": 3}]

        refused = failures.tasks["refused"]
        assert refused.state == "failed" and len(refused.attempts) == 1  # retries=2 unused
        assert refused.attempts[0].error_type == "SqlTaskFailed"
        assert "connection 'sqltest_wh'" in (refused.error or "")
        assert "no_such_table" in (refused.error or "")
        sleepy = failures.tasks["sleepy"]
        assert [a.error_type for a in sleepy.attempts] == ["TaskTimeout"]
        assert "exceeded its timeout of 1.0 s" in (sleepy.error or "")
        # Not the hard time limit's kill (no coordinator here would fail that attempt):
        # the statement was interrupted, then the attempt recorded.
        assert [a.error_type for a in failures.tasks["counting"].attempts] == ["TaskTimeout"]
        shown = client.result(failures.id, "show_connection")
        assert shown.startswith("postgresql://postgres:***@127.0.0.1")
        assert "connecting to postgresql://postgres:***@127.0.0.1" in client.logs(
            failures.id, "show_connection")
        logs = "\n".join(client.logs(r.id, t) for r in (yaml_run, py_run, failures)
                         for t in r.tasks)
    wait_until(lambda: wh.running(SLEEPY_MARK) == 0, timeout=10,
               what="the server to stop the timed-out statement")
    assert wh.rows("SELECT id, label, tag FROM items ORDER BY id") == [
        (1, "item 1", "py"), (2, "item 2", "py"), (3, "item 3", "py"), (100, hostile, "yaml")]
    state = leaks.dump_database(fresh_url)
    assert "item 1" in state and "no_such_table" in state  # the runs are in it
    broker = leaks.dump_broker(broker_url)
    for where, text in (("the state database", state), ("the broker", broker),
                        ("the tasks' logs", logs)):
        for secret in (PASSWORD, in_url, quote(PASSWORD, safe=""), wh.url):
            assert secret not in text, f"{secret!r} in {where}"
