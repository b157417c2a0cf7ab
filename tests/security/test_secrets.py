"""No secret leaks: a distinct secret planted in every setting that can hold one (the
database URL's password on PostgreSQL, the broker URL's password, Flower's password, the
signing key, and the passwords `up` makes), then every command runs, `up` and
`quickstart` included, and a shell task runs `env`. Nothing they print, no process's
argv, no row of the database, no log, no Flower answer and no message in the broker
holds any of them. `.orchestrator/stack.json` (owner-only) is the one place they live."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer

from orchestrator import settings as settings_
from orchestrator.cli.app import app as cli_app
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from tests.security import leaks
from tests.support import ROOT, Up, free_port, make_settings, wait_until

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.timeout(1200)]

DAGS = """\
id: secrets_env
tasks:
  - id: dump_env
    shell: env
    env: {DECLARED: declared-value}
  - id: dump_env_fail
    shell: "env >&2; exit 3"
"""
PARKED = """\
id: secrets_parked
schedule: {event: secrets-battery}
tasks:
  - id: waits
    shell: "true"
    queue: parked_nobody_consumes
"""
DAILY = """\
id: secrets_daily
schedule: "@daily"
catchup: none
tasks:
  - id: waits
    shell: "true"
    queue: parked_nobody_consumes
"""

COVERED = {"run", "cancel", "rerun", "worker", "coordinator", "up", "quickstart",
           "dags list", "dags validate", "runs list", "runs show", "db upgrade", "db current",
           "logs", "server", "tokens create", "tokens list", "tokens revoke",
           "pools set", "pools list", "pools delete", "dags pause", "dags unpause",
           "schedules list", "events emit", "events list", "backfill", "backfills list",
           "backfills show", "backfills cancel", "alerts list", "alerts show",
           "alerts listen", "connections list", "connections test"}
"""Every command, each run below (`worker` and `coordinator` by the stacks)."""


def _commands(group: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group (typer carries its own copy of click)
            found |= _commands(cmd, f"{prefix}{name} ")
        else:
            found.add(prefix + name)
    return found


def test_the_battery_runs_every_command() -> None:
    # a new command fails this until the battery runs it too
    assert _commands(typer.main.get_command(cli_app)) == COVERED


@dataclass
class Planted:
    database_url: str
    secrets: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def cli(self, cwd: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,),
            timeout: float = 300) -> str:
        proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        self.outputs.append((f"`{' '.join(args)}` output", proc.stdout + proc.stderr))
        assert proc.returncode in ok, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout


def _token(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def planted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Planted]:
    planted = {"broker password": _token("brokerpw"), "Flower password": _token("flowerpw"),
               "signing key": _token("signingkey")}
    if request.param == "sqlite":  # no password to plant in a SQLite URL
        yield Planted(f"sqlite:///{tmp_path / 'state.db'}", planted)
        return
    admin = sa.create_engine(str(request.getfixturevalue("postgres_url")),
                             isolation_level="AUTOCOMMIT")
    name, password = f"orch_secret_{uuid.uuid4().hex[:8]}", _token("dbpw")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield Planted(f"postgresql://{name}:{password}@127.0.0.1:5432/{name}",
                      {**planted, "database password": password})
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
        admin.dispose()


def _project(folder: Path) -> Path:
    (folder / "dags").mkdir(parents=True)
    shutil.copy(ROOT / "dags" / "example.py", folder / "dags" / "example.py")
    (folder / "dags" / "secrets_env.yaml").write_text(DAGS)
    (folder / "dags" / "secrets_parked.yaml").write_text(PARKED)
    (folder / "dags" / "secrets_daily.yaml").write_text(DAILY)
    return folder


def _bare(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    return {**env, **extra}


def _flower(port: int, path: str, password: str) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(resp.read().decode())


def _env_of(run: dict[str, Any]) -> dict[str, str]:
    lines = str(run["tasks"]["dump_env"]["result"]).splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _on_a_stack(p: Planted, folder: Path, broker_url: str) -> list[tuple[str, str]]:
    """Every command against a running stack; what it left in the broker, the database,
    Flower and the logs."""
    logs = folder / "logs"
    logs.mkdir()
    # every failed run alerts, to a webhook whose address the coordinator lacks: the
    # alert is given up at once, and `alerts list|show` have it to show
    rules = folder / "rules.yaml"
    rules.write_text("notify:\n  - on: [run_failed]\n"
                     "    webhook: {url: {env: BATTERY_UNSET_HOOK}}\n")
    settings = make_settings(broker_url, p.database_url, dags_path=folder / "dags",
                             notify_file=str(rules), flower_port=free_port(),
                             flower_password=p.secrets["Flower password"],
                             signing_key=p.secrets["signing key"])
    assert set(p.secrets.values()) <= set(settings_.secret_values(settings))
    places: list[tuple[str, str]] = []
    with LocalStack(settings, workers=1, concurrency=2, flower=True, coordinator=True,
                    log_dir=str(logs)) as stack:
        env = _bare(**stack.settings.as_env())
        p.cli(folder, env, "--help")
        p.cli(folder, env, "dags", "list")
        p.cli(folder, env, "dags", "validate")
        p.cli(folder, env, "db", "current")
        p.cli(folder, env, "db", "upgrade")
        # the token it prints is the one thing it should print; no setting's secret
        assert p.cli(folder, env, "tokens", "create", "--role", "viewer", "--name",
                     "battery").startswith("orch_")
        p.cli(folder, env, "tokens", "list")
        p.cli(folder, env, "tokens", "list", "--json")
        p.cli(folder, env, "tokens", "revoke", "battery")
        p.cli(folder, env, "pools", "set", "secrets_battery", "--slots", "2",
              "--description", "battery")
        p.cli(folder, env, "pools", "list")
        p.cli(folder, env, "pools", "list", "--json")
        p.cli(folder, env, "pools", "delete", "secrets_battery")
        # a connection's password: the commands show the connection, never that
        p.secrets["connection password"] = conn_pw = _token("connpw")
        with_conns = {**env, "ORCH_CONN_LOCAL": f"sqlite:///{folder / 'warehouse.db'}",
                      "ORCH_CONN_BATTERY_DB":
                      f"postgresql://etl:{conn_pw}@127.0.0.1:{free_port()}/warehouse"}
        p.cli(folder, with_conns, "connections", "list")
        assert "etl:***@" in p.cli(folder, with_conns, "connections", "list", "--json")
        p.cli(folder, with_conns, "connections", "test", "local")
        p.cli(folder, with_conns, "connections", "test", "battery_db", "--timeout", "5",
              ok=(1,))
        p.cli(folder, env, "dags", "pause", "secrets_parked")
        p.cli(folder, env, "schedules", "list")
        p.cli(folder, env, "schedules", "list", "--json")
        p.cli(folder, env, "events", "emit", "secrets-battery", "--payload", '{"k": 1}')
        # The paused subscriber keeps the event pending; unpausing sends its run.
        p.cli(folder, env, "dags", "unpause", "secrets_parked")
        p.cli(folder, env, "events", "emit", "secrets-battery", "--json")
        p.cli(folder, env, "events", "emit", "secrets-battery", "--payload", "{bad", ok=(2,))
        p.cli(folder, env, "events", "list")
        p.cli(folder, env, "events", "list", "--json")
        p.cli(folder, env, "backfill", "secrets_daily", "--start", "2026-01-01", "--end",
              "2026-01-04", "--dry-run")
        backfill = json.loads(p.cli(folder, env, "backfill", "secrets_daily", "--start",
                                    "2026-01-01", "--end", "2026-01-04", "--json"))
        p.cli(folder, env, "backfills", "list")
        p.cli(folder, env, "backfills", "list", "--json")
        p.cli(folder, env, "backfills", "show", backfill["backfill_id"])
        p.cli(folder, env, "backfills", "show", backfill["backfill_id"], "--json")
        p.cli(folder, env, "backfills", "cancel", backfill["backfill_id"])  # its run is parked
        run = json.loads(p.cli(folder, env, "run", "secrets_env", "--wait", "--json", ok=(1,)))
        got = _env_of(run)
        assert got["DECLARED"] == "declared-value" and got["ORCH_RUN_ID"] == run["id"]
        assert not set(got) & set(settings_.variables())  # none of the worker's settings
        failed = run["tasks"]["dump_env_fail"]["attempts"][0]["error_message"]
        assert "status 3" in failed  # its stderr (`env`) is kept, and searched below
        p.cli(folder, env, "runs", "list")
        p.cli(folder, env, "runs", "list", "--json")
        p.cli(folder, env, "runs", "show", run["id"])
        p.cli(folder, env, "runs", "show", run["id"], "--json")
        # the failing command's stderr (`env`) is its attempt's log, searched with the rest
        assert "ORCH_TASK_ID=dump_env_fail" in p.cli(folder, env, "logs", run["id"],
                                                       "dump_env_fail")
        p.cli(folder, env, "rerun", run["id"], "--wait", ok=(1,))
        wait_until(lambda: json.loads(p.cli(folder, env, "alerts", "list", "--json")),
                   timeout=60, what="the failed run's alert")
        p.cli(folder, env, "alerts", "list")
        alert = json.loads(p.cli(folder, env, "alerts", "list", "--json"))[0]["id"]
        p.cli(folder, env, "alerts", "show", alert)
        p.cli(folder, env, "alerts", "show", alert, "--json")
        p.cli(folder, env, "alerts", "listen", "--secret-env", "BATTERY_UNSET", ok=(2,))
        parked = json.loads(p.cli(folder, env, "run", "secrets_parked", "--json"))["run_id"]
        broker = leaks.dump_broker(broker_url)
        assert "secrets_parked" in broker  # the parked message is there to be searched
        places.append(("the broker's keys", broker))
        p.cli(folder, env, "cancel", parked)
        dead = f"redis://:{p.secrets['broker password']}@127.0.0.1:{free_port()}/0"
        p.cli(folder, {**env, "ORCH_BROKER_URL": dead}, "run", "secrets_env", ok=(2,))
        port, pw = stack.settings.flower.port, p.secrets["Flower password"]
        wait_until(lambda: run["id"] in _flower(port, "/api/tasks", pw), timeout=60,
                   what="Flower to list the run's tasks")
        for path in ("/api/workers?refresh=1", "/api/tasks", "/api/queues/length", "/"):
            places.append((f"Flower {path}", _flower(port, path, pw)))
        places.append(("the database", leaks.dump_database(p.database_url)))
        assert "DECLARED=declared-value" in places[-1][1]  # results are in the dump
    for log in sorted(logs.iterdir()):
        places.append((f"log {log.name}", log.read_text(errors="replace")))
    return places


def _up(p: Planted, folder: Path, watch: leaks.ArgvWatch) -> list[tuple[str, str]]:
    """`up` with the Flower password and the signing key set, the database too; it makes
    the broker's password itself. A second shell runs DAGs with nothing exported."""
    env = _bare(ORCH_DATABASE_URL=p.database_url,
                ORCH_FLOWER_PASSWORD=p.secrets["Flower password"],
                ORCH_SIGNING_KEY=p.secrets["signing key"], ORCH_FLOWER_PORT=str(free_port()),
                ORCH_SERVER_PORT=str(free_port()),
                ORCH_DEFAULT_QUEUE=f"up-{uuid.uuid4().hex[:8]}")
    up = Up(folder, env)
    try:
        assert up.ready(), "up exited early:\n" + up.output
        state = folder / settings_.STATE_DIR / settings_.STACK_FILE
        assert state.stat().st_mode & 0o777 == 0o600
        recorded = json.loads(state.read_text())
        p.secrets["up's broker password"] = recorded["broker_password"]
        p.secrets["up's unused Flower password"] = recorded["flower_password"]
        # the operator token up made for the server: kept in its file, nowhere else
        p.secrets["up's API token"] = (state.parent / "token").read_text().strip()
        assert p.secrets["signing key"] in state.read_text()  # the one place it lives
        run = json.loads(p.cli(folder, _bare(), "run", "secrets_env", "--wait", "--json",
                               ok=(1,)))
        assert _env_of(run)["DECLARED"] == "declared-value"
        p.cli(folder, _bare(), "runs", "show", run["id"])
        wait_until(lambda: watch.saw("orchestrator.devstack.flower_app")
                   and watch.saw("orchestrator coordinator")
                   and watch.saw("orchestrator server"), timeout=60,
                   what="the watch to see up's processes")
    finally:
        up.stop(timeout=120)
    printed = up.output
    assert "the ORCH_FLOWER_PASSWORD you set" in printed  # where it is, never what
    return [("`up` output", printed)]


def test_no_secret_is_printed_passed_on_argv_stored_or_logged(planted: Planted,
                                                               tmp_path: Path) -> None:
    with leaks.ArgvWatch() as watch:
        with EmbeddedBroker(password=planted.secrets["broker password"]) as broker_url:
            places = _on_a_stack(planted, _project(tmp_path / "stack"), broker_url)
        places += _up(planted, _project(tmp_path / "up"), watch)
        quick = _project(tmp_path / "quick")
        planted.cli(quick, _bare(ORCH_DATABASE_URL=planted.database_url,
                                 ORCH_SIGNING_KEY=planted.secrets["signing key"],
                                 ORCH_FLOWER_PASSWORD=planted.secrets["Flower password"]),
                    "quickstart", "example")
        watch.sample()
    for fragment in ("orchestrator worker", "orchestrator coordinator", "orchestrator up",
                     "orchestrator server",
                     "orchestrator quickstart", "orchestrator.devstack.flower_app",
                     "orchestrator.devstack.broker", "valkey-server", "orchestrator run"):
        assert watch.saw(fragment), fragment  # the processes were seen while they ran
    places += [("a process's argv", "\n".join(sorted(watch.seen)))]
    places += planted.outputs
    places.append(("the database after up and quickstart",
                   leaks.dump_database(planted.database_url)))
    assert leaks.find(planted.secrets, places) == []
