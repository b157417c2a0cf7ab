"""Errors the server gives when something it needs is gone, or the request is not one it
knows: problem+json, a status that says so, and nothing internal (no URL, no password,
no path of its own files, no traceback)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from orchestrator.api.app import create_app
from orchestrator.client import Client
from orchestrator.store import Store
from tests.api_support import API, api, problem, serving, token
from tests.support import free_port, rows_at_rest

pytestmark = pytest.mark.integration


def _internals(client: Client) -> list[str]:
    s = client.settings
    return [s.database.url, s.broker.url or "", str(s.dags.path), "Traceback", "sqlalchemy",
            *[v for v in (s.security.signing_key,) if v]]


def test_an_unreachable_broker_is_a_503_that_names_nothing(client: Client) -> None:
    gone = client.settings.with_env(ORCH_BROKER_URL=f"redis://:pw@127.0.0.1:{free_port()}/0")
    before = rows_at_rest(client.store, client.settings)
    with Client(gone) as c, api(c, token(c, "operator")) as http:
        r = http.post(f"{API}/dags/api_quick/runs", json={"params": {}})
        body = problem(r, 503)
        assert "broker" in body["detail"] and "nothing was done" in body["detail"]
        for secret in (*_internals(c), ":pw@", "127.0.0.1"):
            assert secret not in r.text, secret
    assert client.store.count_rows() == before


def test_unknown_routes_and_methods_are_problems(client: Client) -> None:
    with api(client, token(client, "viewer")) as http:
        body = problem(http.get(f"{API}/nothing/here"), 404)
        assert body["detail"] == f"no such route: {API}/nothing/here"
        r = http.delete(f"{API}/runs")
        problem(r, 405)
        assert r.headers["allow"] == "GET"
        problem(http.get(f"{API}/dags/no_such_dag"), 404)
        for r in (http.get(f"{API}/nothing"), http.get(f"{API}/dags/no_such_dag")):
            for secret in (client.settings.database.url, client.settings.broker.url or "",
                           "Traceback", "sqlalchemy"):
                assert secret not in r.text, secret


def test_health_says_when_the_database_does_not_answer(client: Client, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'health.db'}"
    store = Store(url)
    store.upgrade()
    store.dispose()
    with Client(client.settings.with_env(ORCH_DATABASE_URL=url)) as c, \
            serving(create_app(c.settings, client=c)) as base:
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok", "database": "ok"}
        c.store.engine.dispose()  # new connections from now on, to a file that is no database
        (tmp_path / "health.db").write_bytes(b"not a database" * 100)
        r = httpx.get(f"{base}/healthz")
        assert problem(r, 503)["detail"] == "the state database does not answer"
        assert str(tmp_path) not in r.text and "Traceback" not in r.text
