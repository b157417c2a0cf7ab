"""Hostile task messages, pushed straight onto a real worker's queue in kombu's Redis
format: the worker drops each with one warning and goes on; nothing is written and no
task body runs. Signed messages that disagree with themselves are refused too."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.authoring import discovery
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState, TaskState
from orchestrator.settings import Settings
from orchestrator.transport import dispatch
from orchestrator.transport.signing import Signer
from tests.security import forge
from tests.support import TEST_DAGS, Ledger, alive, make_settings, wait_until

pytestmark = [pytest.mark.security, pytest.mark.integration]

BAG = discovery.load(TEST_DAGS)
NAMES: list[Any] = sorted({dispatch.task_name(d.id, t.celery_name)
                           for d in BAG.dags.values() for t in d.spec.tasks})
NAMES += ["orchestrator.unresolved", "orchestrator:callback", "celery.map", "celery.starmap",
          "celery.chord",
          "celery.group", "nodag.notask", "chain20.nosuchtask", ""]
DROPPED = "dropped "


@dataclass
class Target:
    settings: Settings
    name: str
    pid: int
    log: Path
    r: redis.Redis
    app: Celery
    client: Client
    run_id: str
    """A finished run of chain20: messages may name it, and must change nothing."""

    @property
    def queue(self) -> str:
        return self.settings.worker.default_queue

    def drops(self) -> int:
        return self.log.read_text(errors="replace").count(DROPPED)

    def answers_ping(self) -> bool:
        node = f"{self.name}@{socket.gethostname()}"
        replies = self.app.control.ping(destination=[node], timeout=2.0) or []
        return any(node in reply for reply in replies)


@pytest.fixture(scope="module")
def target(broker_url: str, database_url: str, ledger_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One worker with one pool process, on a queue of its own."""
    logs = tmp_path_factory.mktemp("hostile")
    with LocalStack(make_settings(broker_url, database_url), workers=1, concurrency=1,
                    log_dir=str(logs)) as stack, Client(stack.settings) as client:
        run_id = client.submit("chain20")
        assert client.wait(run_id, timeout=120).state == RunState.SUCCESS
        app = dispatch.make_producer_app(stack.settings, broker_url)
        r = redis.Redis.from_url(broker_url)
        w = stack.workers[0]
        try:
            yield Target(stack.settings, w.name, w.pid, logs / f"{w.name}.log", r, app,
                         client, run_id)
        finally:
            r.close()
            app.close()


def _deliver(t: Target, items: list[bytes]) -> None:
    """Push ``items`` and wait until the worker has dropped every one (one line each)."""
    before = t.drops()
    forge.push(t.r, t.queue, items)
    wait_until(lambda: t.drops() >= before + len(items), timeout=60,
               what=f"the worker to drop {len(items)} messages")
    assert t.drops() == before + len(items), "each message is dropped with one line"
    assert t.r.llen(t.queue) == 0


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_no_message_stops_a_worker_or_changes_anything(target: Target, ledger: Ledger,
                                                       data: st.DataObject) -> None:
    rows = target.client.store.count_rows()
    ran = ledger.entries(target.run_id)
    runs_in_ledger = sorted(ledger.path.glob("*.jsonl"))
    run_ids = [target.run_id, "0" * 32, target.run_id.upper()]
    items = data.draw(st.lists(forge.hostile_items(target.queue, NAMES, run_ids),
                               min_size=1, max_size=12), label="items")
    _deliver(target, items)
    assert alive(target.pid)
    assert target.answers_ping()
    assert target.client.store.count_rows() == rows
    assert ledger.entries(target.run_id) == ran  # no task body ran again
    assert sorted(ledger.path.glob("*.jsonl")) == runs_in_ledger  # nor for any other run


def test_the_worker_log_has_no_traceback(target: Target) -> None:
    # After the hostile batches above (same module, same worker): one line per message.
    _deliver(target, [forge.task_message(target.queue, "chain20.inc", {"x": 1})])
    text = target.log.read_text(errors="replace")
    assert "Traceback" not in text and "Unrecoverable" not in text
    assert "CRITICAL" not in text


def _killme_waiting(stack: LocalStack, client: Client, r: redis.Redis) -> str:
    """A run of killme whose root is queued with no message on the broker: only a
    message the test sends can start it."""
    run_id = client.submit("killme")
    r.delete(stack.settings.worker.default_queue)
    return run_id


def test_signed_messages_that_disagree_are_refused_before_any_write(
        own_stack: LocalStack, broker: redis.Redis, ledger: Ledger) -> None:
    settings_, queue = own_stack.settings, own_stack.settings.worker.default_queue
    signer = Signer.of(settings_)
    with Client(settings_) as client:
        run = _killme_waiting(own_stack, client, broker)
        dag = client.dag("killme")

        def name(task_id: str) -> str:
            return dispatch.task_name(dag.id, dag.spec.task(task_id).celery_name)

        first, gated = name("first"), name("gated")

        def signed(n: str = first, d: Any = "killme", t: Any = "first", r: Any = run,
                   a: Any = 1) -> dict[str, Any]:
            return forge.signed_kwargs(signer, n, d, t, r, a)

        cases: list[tuple[str, Any, dict[str, Any]]] = [
            *[(first, signed(a=a), {}) for a in ("1", True, 1.0, 0, -1, 2**31, 2**63)],
            *[(first, signed(r=r), {}) for r in (run.upper(), run + "\n", run[:-1], 7)],
            (first, signed(t="first\n"), {}), (first, signed(d="killme\n"), {}),
            (gated, signed(gated), {}),  # the name of one task, the kwargs of another
            ("chain20.inc", signed("chain20.inc"), {}),
            (first, {**signed(), "sig": Signer("another-key-" + "x" * 32).task(
                first, "killme", "first", run, 1)}, {}),
            (first, {k: v for k, v in signed().items() if k != "sig"}, {}),
            (first, {**signed(), "extra": 1}, {}),
            (first, signed(), {"timelimit": [0.001, 0.001]}),  # limits the signature lacks
            (first, signed(), {"timelimit": "soon"}), (first, signed(), {"eta": "never"}),
            (first, signed(), {"retries": "many"}), (first, signed(), {"id": None}),
        ]
        own_stack.add_worker("signed", concurrency=1)
        log = Path(own_stack.log_dir or "") / "signed.log"
        rows = client.store.count_rows()
        forge.push(broker, queue, [forge.task_message(queue, n, k, **h) for n, k, h in cases])
        wait_until(lambda: log.read_text(errors="replace").count(DROPPED) >= len(cases),
                   timeout=60, what="every forged message to be dropped")
        assert log.read_text(errors="replace").count(DROPPED) == len(cases)
        assert client.store.count_rows() == rows
        root = client.get_run(run).tasks["first"]
        assert (root.state, root.attempt, root.attempts) == (TaskState.QUEUED, 1, [])
        assert ledger.entries(run) == []
        # The same root, sent properly (with its chain), runs: it was there to start.
        app = dispatch.make_producer_app(settings_, settings_.broker.url or "")
        try:
            dispatch.Dispatcher(app, settings_).send(dag, run, [("first", 1)])
        finally:
            app.close()
        wait_until(lambda: ledger.of(run, "first"), timeout=60, what="the root to run")
        ledger.open_gate(run, "go")
        assert client.wait(run, timeout=60).state == RunState.SUCCESS
        assert [e["attempt"] for e in ledger.of(run, "first")] == [1]
