"""No setting's secret reaches a stored log: a task prints, writes to stderr and logs each
secret its worker holds (the database URL's password on PostgreSQL with a password role,
the broker's password, the signing key), plain, URL-quoted and base64, and the URLs
themselves. Neither its log nor any row of the database holds any of them."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from orchestrator import settings as settings_
from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.store import Store
from tests.security import leaks
from tests.support import make_settings

pytestmark = [pytest.mark.security, pytest.mark.integration]
WAIT_S = 60


def _token(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def planted_db(request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A database URL, and its password when it has one (a role made for the test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        Store(url).upgrade()
        yield url, {}
        return
    admin = sa.create_engine(str(request.getfixturevalue("postgres_url")),
                             isolation_level="AUTOCOMMIT")
    # '/', '+' and ':' are quoted in the URL: the log must hold neither form
    name, password = f"orch_logsec_{uuid.uuid4().hex[:8]}", _token("dbpw") + "/+:x"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"CREATE DATABASE {name} OWNER {name}")
    url = f"postgresql://{name}:{quote(password, safe='')}@127.0.0.1:5432/{name}"
    try:
        Store(url).upgrade()
        yield url, {"database password": password}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
        admin.dispose()


def _forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), quote(secret, safe="").lower(),
            base64.b64encode(secret.encode()).decode().rstrip("="),
            base64.b64encode(f"admin:{secret}".encode()).decode()[8:-4]]


def test_no_secret_reaches_a_stored_log(planted_db: tuple[str, dict[str, str]],
                                        ledger_dir: Path, tmp_path: Path) -> None:
    database_url, planted = planted_db
    planted = {**planted, "broker password": _token("brokerpw"),
               "signing key": _token("signingkey")}
    with EmbeddedBroker(password=planted["broker password"]) as broker_url:
        settings = make_settings(broker_url, database_url,
                                 signing_key=planted["signing key"])
        assert set(planted.values()) <= set(settings_.secret_values(settings))
        with LocalStack(settings, workers=1, concurrency=1, log_dir=str(tmp_path)) as stack, \
                Client(stack.settings) as client:
            run = client.wait(client.submit("logs_leak"), timeout=WAIT_S)
            log = client.logs(run.id, "leaker")
            printed = client.result(run.id, "leaker")
    assert run.state == RunState.SUCCESS
    # the task did print every secret its worker holds, each form, on every channel
    assert printed >= len(planted)
    for line in ("ORCH_DATABASE_URL=", "ORCH_BROKER_URL=", "plain ***", "quoted ***",
                 "lower ***", "base64 ***", "stderr ***", "WARNING tdag.logs: logged ***"):
        assert line in log, line
    assert "basic " in log and "@127.0.0.1" in log  # the URLs, with their passwords masked
    places = [("the task's log", log), ("the database", leaks.dump_database(database_url))]
    assert "plain ***" in places[1][1]  # the log is in the dump searched below
    found = [f"{name} ({form!r}) in {where}" for where, text in places
             for name, secret in planted.items() for form in _forms(secret) if form in text]
    assert found == []
