"""The secrets battery: four secrets a run holds (a secret param, a variable of the
worker's environment, a file on its machine, the password of a named connection), each
planted in six forms (printed plain,
URL-quoted and base64, raised in an exception, returned inside a JSON result, printed by
a shell task), on real workers, a real broker and database. Then every place a secret
could reach is searched for every form of each: every row of every table, every log
chunk, every API response, the CLI's output, Flower's task pages and API, the broker and
the processes' own log files. Zero occurrences."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.api_support import API, api, token
from tests.integration.test_lifecycle import _flower_get
from tests.security import leaks
from tests.support import free_port, make_settings, wait_until

BATTERY_FILE = Path(tempfile.gettempdir()) / f"orchestrator-battery-{os.getuid()}.secret"
"""The file tdag_secrets names (the same expression there)."""

pytestmark = [pytest.mark.security, pytest.mark.integration]
WAIT_S = 90
FLOWER_AUTH = "admin:battery-flower-pw"


def _forms(secret: str) -> list[str]:
    """What a search looks for: the value, URL-quoted (either hex case), base64 (alone
    and inside an HTTP Basic credential)."""
    return [secret, quote(secret, safe=""), quote(secret, safe="").lower(),
            base64.b64encode(secret.encode()).decode().rstrip("="),
            base64.b64encode(f"admin:{secret}".encode()).decode()[8:-4]]


@pytest.fixture
def planted(ledger_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The secrets, with characters URL quoting changes; the env one is in this process's
    environment before the workers start (they inherit it), the file one in the file the
    DAG names."""
    values = {name: f"{name}-{secrets.token_hex(12)}/+:x" for name in
              ("param", "env", "file", "connection")}
    monkeypatch.setenv("BATTERY_ENV_TOKEN", values["env"])
    monkeypatch.setenv("ORCH_CONN_BATTERY_DB", "postgresql://etl:"
                       f"{quote(values['connection'], safe='')}@127.0.0.1:9/warehouse")
    BATTERY_FILE.write_text(values["file"] + "\n", encoding="utf-8")
    yield values
    BATTERY_FILE.unlink(missing_ok=True)


@pytest.fixture
def battery_stack(broker_url: str, database_url: str, planted: dict[str, str],
                  tmp_path: Path) -> Iterator[LocalStack]:
    settings = make_settings(broker_url, database_url, flower_port=free_port(),
                             flower_password=FLOWER_AUTH.split(":")[1], task_events=True)
    (tmp_path / "logs").mkdir()
    with LocalStack(settings, workers=1, concurrency=2, flower=True,
                    log_dir=str(tmp_path / "logs")) as s:
        yield s


def _flower(port: int, path: str) -> str:
    status, body = _flower_get(port, path, FLOWER_AUTH)
    assert status == 200, (path, status)
    return body.decode(errors="replace")


def _api_texts(client: Client, run_ids: list[str], tasks: dict[str, list[str]],
               ) -> list[tuple[str, str]]:
    places: list[tuple[str, str]] = []
    with api(client, token(client, "viewer")) as http:
        def get(path: str) -> None:
            r: httpx.Response = http.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            places.append((f"GET {path}", r.text))

        for run_id in run_ids:
            get(f"{API}/runs/{run_id}")
            get(f"/runs/{run_id}")  # the run view's page
            for task_id in tasks[run_id]:
                get(f"{API}/runs/{run_id}/tasks/{task_id}/logs?attempt=1")
                get(f"/runs/{run_id}/tasks/{task_id}/log")
        for dag_id in ("secrets_battery", "secrets_shell"):
            get(f"{API}/runs?dag_id={dag_id}")
            get(f"{API}/dags/{dag_id}")
    return places


def _cli_texts(stack: LocalStack, run_ids: list[str], tasks: dict[str, list[str]],
               monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    for key, value in stack.settings.as_env().items():
        monkeypatch.setenv(key, value)
    runner, places = CliRunner(), []
    commands = [["runs", "show", r] for r in run_ids]
    commands += [["runs", "show", r, "--json"] for r in run_ids]
    commands += [["logs", r, t] for r in run_ids for t in tasks[r]]
    for args in commands:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, (args, result.output[-500:])
        places.append((f"orchestrator {' '.join(args)}", result.output))
    return places


def test_no_planted_secret_shows_anywhere(battery_stack: LocalStack, planted: dict[str, str],
                                          database_url: str, broker_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    stack = battery_stack
    port = stack.settings.flower.port
    wait_until(lambda: _flower_get(port, "/healthcheck", None)[0] == 200, what="Flower")
    tasks = {}
    with Client(stack.settings) as client:
        py = client.submit("secrets_battery", {"api_key": planted["param"]})
        sh = client.submit("secrets_shell", {"api_key": planted["param"]})
        runs = {r: client.wait(r, timeout=WAIT_S) for r in (py, sh)}
        tasks = {r: sorted(run.tasks) for r, run in runs.items()}
        # The tasks did get every secret: they planted each form, and failed with them.
        assert {t: ti.state for t, ti in runs[py].tasks.items()} == {
            "plant": "success", "explode": "failed", "plant_connection": "success"}
        assert runs[py].state == runs[sh].state == RunState.FAILED
        assert len(runs[py].tasks["explode"].attempts) == 2  # a retry's event too
        log = client.logs(py, "plant")
        for form in ("plain ***", "quoted ***", "base64 ***",
                     "basic " + base64.b64encode(b"admin:").decode() + "***"):
            assert log.count(form) == 3, (form, log)
        assert log.count("WARNING tdag.secrets: logged ***") == 3
        result = client.result(py, "plant")
        assert result["password"] == "***" and result["json"] == json.dumps(
            {"values": ["***"] * 3})
        assert client.result(sh, "echo_secrets").startswith("param *** env ***")
        shown = client.result(py, "plant_connection")
        assert shown["url"] == "postgresql://etl:***@127.0.0.1:9/warehouse"
        assert set(shown["forms"].values()) <= {"***", base64.b64encode(b"admin:").decode()
                                                + "***"}, shown
        assert "failing with *** and ***" in (runs[sh].tasks["fail_with_secrets"].error or "")
        assert "cannot connect with ***" in (runs[py].tasks["explode"].error or "")
        places = [("the database", leaks.dump_database(database_url)),
                  ("the broker", leaks.dump_broker(broker_url))]
        places += [(f"log of {r}/{t}", client.logs(r, t)) for r in runs for t in tasks[r]]
        places += _api_texts(client, list(runs), tasks)
        celery_ids = [a.celery_id for run in runs.values() for ti in run.tasks.values()
                      for a in ti.attempts if a.celery_id]
    places += _cli_texts(stack, list(runs), tasks, monkeypatch)

    def flower_has_them() -> str | None:
        listed = _flower(port, "/api/tasks?limit=1000")
        found = [u for u in celery_ids if u in listed]
        # every attempt's events, the failures' with their exception and traceback
        ended = len(re.findall(r'"state": "(?:SUCCESS|FAILURE|RETRY)"', listed))
        return listed if len(found) == len(celery_ids) and ended >= len(celery_ids) else None

    listed = wait_until(flower_has_them, timeout=60, what="Flower to show every attempt")
    assert "RuntimeError" in listed and "cannot connect with ***" in listed
    places.append(("Flower /api/tasks", listed))
    places.append(("Flower /tasks", _flower(port, "/tasks")))
    places += [(f"Flower /task/{u}", _flower(port, f"/task/{u}")) for u in celery_ids]
    stack.stop()  # the processes' own logs are complete once they have exited
    places += [(f"process log {p.name}", p.read_text(errors="replace"))
               for p in sorted((tmp_path / "logs").glob("*.log"))]
    assert any("process log" in where for where, _ in places)
    found = [f"{name} ({form!r}) in {where}" for where, text in places
             for name, secret in planted.items() for form in _forms(secret) if form in text]
    assert found == []
