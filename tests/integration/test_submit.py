"""Submit tells the truth: refused with nothing written when the broker is unreachable,
accepted and sent later when the broker takes the connection but not the message; one
idempotency key is one run, with its params, however many submit it at once."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.settings import Settings
from orchestrator.store.tables import runs
from tests.support import ROOT, free_port, fresh_database, make_settings, rows_at_rest

pytestmark = pytest.mark.integration
WAIT_S = 60


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update(settings.as_env(), ORCH_TEST_LEDGER_DIR=os.environ["ORCH_TEST_LEDGER_DIR"])
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_an_unreachable_broker_refuses_the_submit_and_writes_nothing(client: Client) -> None:
    gone = client.settings.with_env(ORCH_BROKER_URL=f"redis://:pw@127.0.0.1:{free_port()}/0")
    before = rows_at_rest(client.store, client.settings)
    proc = _cli(gone, "run", "typed", "-p", "name=ada")
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the broker at redis://:***@127.0.0.1:" in proc.stderr
    assert "nothing was submitted" in proc.stderr and ":pw@" not in proc.stderr
    assert client.store.count_rows() == before


@pytest.fixture
def acl_stack(database_url: str, ledger_dir: Path, tmp_path: Path) -> Iterator[LocalStack]:
    # A database of its own too: its coordinator would first resend every stalled task
    # the shared one holds (hundreds, by the end of a full run) before this test's.
    with EmbeddedBroker(port=free_port()) as url, fresh_database(database_url, tmp_path) as db:
        # the default requeue interval (300 s): only the unsent mark brings the run in time
        settings = make_settings(url, db, reconcile_interval=0.3, requeue_after=300.0)
        with LocalStack(settings, workers=1, coordinator=True, log_dir=str(tmp_path)) as s:
            yield s


def test_a_broker_that_takes_the_connection_but_not_the_message(acl_stack: LocalStack) -> None:
    url = acl_stack.settings.broker.url or ""
    port = url.rsplit(":", 1)[1].split("/")[0]
    admin = redis.Redis.from_url(url)
    admin.execute_command("ACL", "SETUSER", "pinger", "on", ">pw", "+@connection", "~*")
    admin.close()
    refusing = acl_stack.settings.with_env(ORCH_BROKER_URL=f"redis://pinger:pw@127.0.0.1:{port}/0")
    proc = _cli(refusing, "run", "typed", "-p", "name=ada", "-p", "times=2")
    assert proc.returncode == 0, proc.stderr
    assert "is accepted, but the broker went away" in proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    with Client(acl_stack.settings) as client:  # the coordinator sends it
        run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert run.tasks["greet"].result == "hello ada hello ada"


def test_one_key_with_other_params_is_an_error_naming_the_run(client: Client) -> None:
    key = uuid.uuid4().hex
    first = client.submit("typed", {"name": "ada"}, idempotency_key=key)
    assert client.submit("typed", {"name": "ada"}, idempotency_key=key) == first
    client.wait(first, timeout=WAIT_S)
    before = rows_at_rest(client.store, client.settings)
    with pytest.raises(errors.Conflict, match=f"used by run {first}"):
        client.submit("typed", {"name": "bob"}, idempotency_key=key)
    assert client.store.count_rows() == before
    proc = _cli(client.settings, "run", "typed", "-p", "name=eve", "--idempotency-key", key)
    assert proc.returncode == 2
    assert f"used by run {first}" in proc.stderr
    again = _cli(client.settings, "run", "typed", "-p", "name=ada", "--idempotency-key", key)
    assert again.returncode == 0 and again.stdout.strip() == first
    assert "nothing new was submitted" in again.stderr


def _submit_with(env: dict[str, str], key: str, start: Any, out: Any) -> None:
    settings = Settings.from_env(env)
    with Client(settings) as c:
        start.wait(timeout=60)
        out.put(c.submit("typed", {"name": "ada"}, idempotency_key=key))


def test_concurrent_submits_with_one_key_make_one_run(client: Client) -> None:
    key = uuid.uuid4().hex
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_submit_with, args=(client.settings.as_env(), key, start, out))
             for _ in range(6)]
    for p in procs:
        p.start()
    start.set()
    ids = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(ids)) == 1
    with client.store.engine.connect() as conn:
        made = conn.execute(runs.select().where(runs.c.idempotency_key == key)).all()
    assert [r.id for r in made] == ids[:1]
    assert client.wait(ids[0], timeout=WAIT_S).state == RunState.SUCCESS
