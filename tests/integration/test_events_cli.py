"""``orchestrator events emit|list`` and ``dags pause|unpause`` as a user runs them (the
installed entry point, in a process of its own) against a stack with real workers, on
SQLite and PostgreSQL: an emitted event's run is sent and runs; the list says what is
pending and which run consumed what; unpausing sends the runs of the events that waited;
bad input exits 2 with a message and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestrator import settings as settings_
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.store import Store
from tests.integration.test_events_store import _register
from tests.support import ROOT

pytestmark = pytest.mark.integration

WAIT_S = 60


def _cli(env: dict[str, str], *args: str, ok: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
                          | env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == ok, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def env(stack: LocalStack) -> dict[str, str]:
    return stack.settings.as_env()


def _no_secret(stack: LocalStack, *procs: subprocess.CompletedProcess[str]) -> None:
    secrets = settings_.secret_values(stack.settings)
    assert secrets  # the signing key at least: the check below checks something
    for proc in procs:
        assert not [s for s in secrets if s in proc.stdout + proc.stderr]


def test_emit_runs_the_subscriber_and_list_names_the_run(client: Client, stack: LocalStack,
                                                         env: dict[str, str]) -> None:
    _register(client.store, [client.dag("tev_cli")])
    emitted = _cli(env, "events", "emit", "tev-cli", "--payload", '{"rows": 3}', "--json")
    done = json.loads(emitted.stdout)
    assert len(done["runs"]) == 1 and done["started"] == done["runs"] and done["unsent"] == []
    run = client.wait(done["runs"][0], timeout=WAIT_S)  # sent by the command: it runs
    assert run.state == RunState.SUCCESS
    assert client.result(run.id, "seen")["payload"] == {"rows": 3}
    plain = _cli(env, "events", "emit", "tev-cli")
    event_id = plain.stdout.strip()
    assert len(event_id) == 32 and "started 1 run(s)" in plain.stderr
    listed = json.loads(_cli(env, "events", "list", "--name", "tev-cli", "--json").stdout)
    mine = {e["id"]: e for e in listed}
    first = mine[done["event_id"]]
    assert first["status"] == "consumed" and first["payload"] == {"rows": 3}
    assert first["consumers"] == [{"dag_id": "tev_cli", "run_id": run.id}]
    assert mine[event_id]["payload"] is None and mine[event_id]["status"] == "consumed"
    table = _cli(env, "events", "list", "--name", "tev-cli")
    assert done["event_id"][:12] in table.stdout and f"tev_cli {run.id[:12]}" in table.stdout
    _no_secret(stack, emitted, plain, table)


def test_an_event_nobody_consumes_is_listed_pending(stack: LocalStack,
                                                    env: dict[str, str]) -> None:
    out = _cli(env, "events", "emit", "tev-cli-nobody", "--payload", "[1, 2]")
    event_id = out.stdout.strip()
    assert "pending" in out.stderr
    listed = json.loads(_cli(env, "events", "list", "--pending", "--json").stdout)
    mine = [e for e in listed if e["id"] == event_id]
    assert mine == [{"id": event_id, "kind": "event", "name": "tev-cli-nobody",
                     "created_at": mine[0]["created_at"], "status": "pending",
                     "consumers": [], "payload": [1, 2], "run_id": None, "task_id": None}]
    table = _cli(env, "events", "list", "--name", "tev-cli-nobody", "--kind", "event").stdout
    assert event_id[:12] in table and "pending" in table and "no DAG yet" in table
    assert "tev-cli-nobody" not in _cli(env, "events", "list", "--kind", "asset").stdout


def test_unpause_sends_the_runs_of_the_events_that_waited(client: Client,
                                                          env: dict[str, str]) -> None:
    _register(client.store, [client.dag("tev_cli")])
    _cli(env, "dags", "pause", "tev_cli")
    held = [json.loads(_cli(env, "events", "emit", "tev-cli", "--payload", json.dumps(n),
                            "--json").stdout) for n in (10, 20)]
    assert all(h["runs"] == [] and h["pending"] == 1 for h in held)
    pending = json.loads(_cli(env, "events", "list", "--name", "tev-cli", "--pending",
                              "--json").stdout)
    assert {e["id"] for e in pending} == {h["event_id"] for h in held}
    assert all(e["consumers"] == [{"dag_id": "tev_cli", "run_id": None}] for e in pending)
    unpaused = _cli(env, "dags", "unpause", "tev_cli")
    listed = {e["id"]: e for e in json.loads(_cli(env, "events", "list", "--name",
                                                  "tev-cli", "--json").stdout)}
    consumed = [listed[h["event_id"]]["consumers"][0]["run_id"] for h in held]
    assert None not in consumed  # both consumed by the unpause, which names their runs
    assert f"started 2 run(s): {', '.join(consumed)}" in unpaused.stderr
    for run_id, n in zip(consumed, (10, 20), strict=True):
        assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS
        assert client.result(run_id, "seen")["payload"] == n


@pytest.fixture
def empty_env(fresh_url: str) -> Iterator[dict[str, str]]:
    """A database of its own (so a row count is this test's alone), and no broker: bad
    input must be refused before one is needed."""
    store = Store(fresh_url)
    store.upgrade()
    store.dispose()
    yield {"ORCH_DATABASE_URL": fresh_url, "ORCH_MAX_PARAMS_BYTES": "64"}


@pytest.mark.parametrize("args,says", [
    (["bad name!"], "is not an event name"),
    (["ok", "--payload", "{rows: 3}"], "--payload is not JSON: Expecting property name"),
    (["ok", "--payload", ""], "--payload is not JSON"),
    (["ok", "--payload", '"' + "a" * 100 + '"'], "more than ORCH_MAX_PARAMS_BYTES (64)"),
    (["ok", "--payload", '{"x": NaN}'], "--payload: NaN is not JSON"),
    (["ok", "--payload", "[-Infinity]"], "--payload: -Infinity is not JSON"),
    (["ok", "--payload", '"a\\u0000"'], "invalid event payload"),
    (["ok", "--payload", "[" * 5000 + "]" * 5000], "nested"),
])
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
        empty_env: dict[str, str], args: list[str], says: str) -> None:
    store = Store(empty_env["ORCH_DATABASE_URL"])
    try:
        before = store.count_rows()
        proc = _cli(empty_env, "events", "emit", *args, ok=2)
        assert says in proc.stderr and proc.stdout == ""
        assert store.count_rows() == before
        assert store.events() == []
    finally:
        store.dispose()
