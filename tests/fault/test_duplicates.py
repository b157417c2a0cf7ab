"""At-least-once delivery, exactly-once state: duplicated messages change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.client import Client
from orchestrator.devstack.broker import EmbeddedBroker
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from tests.support import Ledger, free_port, make_settings, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fault]



@pytest.fixture
def isolated(database_url: str, ledger_dir: Path, tmp_path: Path) -> Iterator[LocalStack]:
    """A broker of its own, so "nothing left in flight" means this test's messages; a
    fourth pool process takes duplicates while the three parents still run."""
    with EmbeddedBroker(port=free_port()) as url, \
            LocalStack(make_settings(url, database_url), workers=1, concurrency=4,
                       log_dir=str(tmp_path)) as stack:
        yield stack


def test_every_message_into_a_fan_in_delivered_twice(isolated: LocalStack,
                                                      ledger: Ledger) -> None:
    with Client(isolated.settings) as client:
        run_id = client.submit("fanin3")
        wait_until(lambda: len(ledger.entries(run_id)) == 3, what="the three parents to start")
        dag = client.dag("fanin3")
        again = client._wiring.dispatcher
        for parent in ("p0", "p1", "p2"):  # the broker delivers each parent's message again
            again.send(dag, run_id, [(parent, 1)])
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=120)
        assert run.state == RunState.SUCCESS
        again.send(dag, run_id, [("join_all", 1)])  # and the join's, after it ran

        r = redis.Redis.from_url(isolated.settings.broker.url or "")
        queue = isolated.settings.worker.default_queue
        wait_until(lambda: r.llen(queue) == 0 and r.hlen("unacked") == 0, timeout=60,
                   what="every duplicate to be delivered and dropped")
        r.close()
        final = client.get_run(run_id)
    assert client.result(run_id, "join_all") == [0, 1, 2]  # every parent, in order
    assert sorted(e["task"] for e in ledger.entries(run_id)) == ["join_all", "p0", "p1", "p2"]
    assert all(len(t.attempts) == 1 for t in final.tasks.values())


def test_a_task_longer_than_the_visibility_timeout_never_overlaps(
        database_url: str, ledger: Ledger, tmp_path: Path) -> None:
    """The broker redelivers the still-running task's message; it is parked, not run."""
    with EmbeddedBroker(port=free_port()) as url, \
            LocalStack(make_settings(url, database_url, task_timeout_max=1.0,
                                     visibility_timeout=2.0, unacked_restore_interval=0.5),
                       workers=1, concurrency=2, log_dir=str(tmp_path)) as stack, \
            Client(stack.settings) as client:
        run_id = client.submit("gateonly")
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        logs = list(tmp_path.glob("*.log"))

        def parked() -> bool:
            return any("'deferred'" in f.read_text(errors="replace") for f in logs)

        wait_until(parked, timeout=60, what="the broker to redeliver the running task")
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=60)
    assert run.state == RunState.SUCCESS
    assert [e["attempt"] for e in ledger.of(run_id, "gated")] == [1]
    assert len(run.tasks["gated"].attempts) == 1
