"""``orchestrator connections list|test`` against real services: SQLite, PostgreSQL and
MariaDB answering SELECT 1, a local HTTP server answering a GET, and ones that do not
answer. Nothing secret is printed: a password in a URL, a header value from the
connections file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.execution import connections
from tests.http_fixture_server import FixtureServer, Reply
from tests.support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_outside_connections")]

PASSWORD = "s3cret-Pw_9f2"
TOKEN = "Bearer tok-8c1d2e3f4a5b"



def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["connections", *args])
    return result.exit_code, result.output


def _with_password(url: str) -> str:
    """The URL with a password put in (trust auth lets PostgreSQL ignore it)."""
    parsed = sa.make_url(url)
    return parsed.set(password=PASSWORD).render_as_string(hide_password=False)


def test_list_shows_every_connection_masked(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(f"""
connections:
  api:
    url: https://api.example.com/v1
    headers: {{Authorization: "{TOKEN}"}}
  local: sqlite:///{tmp_path}/w.db
""", encoding="utf-8")
    monkeypatch.setenv(connections.FILE_VARIABLE, str(path))
    monkeypatch.setenv("ORCH_CONN_WAREHOUSE", f"postgresql://etl:{PASSWORD}@db:5432/w")
    code, out = _cli("list", "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert [c["name"] for c in shown] == ["api", "local", "warehouse"]
    assert shown[2]["url"] == "postgresql://etl:***@db:5432/w"
    assert shown[0]["headers"] == ["Authorization"]
    assert shown[2]["source"] == "env ORCH_CONN_WAREHOUSE"
    code, table = _cli("list")
    assert code == 0 and "warehouse" in table and "ORCH_CONN_WAREHOUSE" in table
    for text in (out, table):
        assert PASSWORD not in text and "tok-8c1d" not in text


def test_a_sqlite_database_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_WAREHOUSE", f"sqlite:///{tmp_path / 'w.db'}")
    code, out = _cli("test", "warehouse", "--json")
    assert code == 0, out
    assert json.loads(out)["ok"] is True
    assert "sqlite answered SELECT 1" in json.loads(out)["detail"]


@pytest.mark.postgres
def test_postgres_answers_and_the_password_is_not_shown(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_PG", _with_password(postgres_url))
    code, out = _cli("test", "pg")
    assert code == 0, out
    assert "ok" in out and "postgresql answered SELECT 1" in out
    assert PASSWORD not in out and "***" in out


def test_mariadb_answers(mariadb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_MARIA", mariadb_url)
    code, out = _cli("test", "maria", "--json")
    assert code == 0, out
    assert "mysql answered SELECT 1" in json.loads(out)["detail"]


def test_a_database_that_is_not_there_fails_with_exit_1(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_CONN_GONE",
                       f"postgresql://etl:{PASSWORD}@127.0.0.1:{free_port()}/nothing")
    code, out = _cli("test", "gone", "--timeout", "5")
    assert code == 1, out
    assert "failed" in out and "OperationalError" in out
    assert PASSWORD not in out


def test_an_http_service_answers_and_a_failing_one_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with FixtureServer() as server:
        server.routes["/ok"] = lambda seen, n: Reply.json({"up": True})
        server.routes["/down"] = lambda seen, n: Reply.text("overloaded", 503)
        monkeypatch.setenv("ORCH_CONN_UP", f"{server.origin}/ok")
        monkeypatch.setenv("ORCH_CONN_DOWN", f"{server.origin}/down")
        code, out = _cli("test", "up")
        assert code == 0 and "HTTP 200" in out, out
        code, out = _cli("test", "down")
        assert code == 1 and "HTTP 503" in out, out


def test_an_unknown_connection_is_an_error_naming_where_it_looked() -> None:
    result = CliRunner().invoke(cli.app, ["connections", "test", "nope"])
    assert result.exit_code != 0
    assert "ORCH_CONN_NOPE is not set" in str(result.exception)
