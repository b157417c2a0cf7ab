"""Remote control from anyone on the broker: a plain Celery app (no key) broadcasts the
commands that stop, starve or slow a worker; ours refuses each, keeps answering ping and
runs DAGs. A revoke without our signature terminates nothing."""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model.states import RunState
from orchestrator.transport.signing import KWARG, Signer
from tests.support import Ledger, free_port, make_settings, wait_until

pytestmark = [pytest.mark.security, pytest.mark.integration]


@pytest.fixture
def outsider(own_stack: LocalStack) -> Iterator[Celery]:
    """A Celery app on the same broker that holds no signing key."""
    app = Celery("outsider", broker=own_stack.settings.broker.url, set_as_current=False)
    yield app
    app.close()


def _node(name: str) -> str:
    return f"{name}@{socket.gethostname()}"


def _ask(app: Celery, node: str, command: str, **arguments: Any) -> Any:
    replies = app.control.broadcast(command, arguments=arguments, destination=[node],
                                    reply=True, timeout=2.0) or []
    answers = [r[node] for r in replies if node in r]
    assert answers, f"{node} did not answer {command}"
    return answers[0]


def test_commands_that_stop_or_starve_a_worker_do_nothing(own_stack: LocalStack,
                                                          outsider: Celery,
                                                          broker: redis.Redis) -> None:
    own_stack.add_worker("ctl", concurrency=2)
    node, queue = _node("ctl"), own_stack.settings.worker.default_queue
    # Broadcasts that are not kombu messages at all, on the mailbox's own channel.
    db = broker.connection_pool.connection_kwargs.get("db", 0)
    for junk in (b"not json", json.dumps([1]), json.dumps({"body": "x", "properties": []})):
        assert broker.publish(f"/{db}.celery.pidbox", junk) >= 1
    processes = _ask(outsider, node, "stats")["pool"]["processes"]
    with Client(own_stack.settings) as client:
        inc = next(t for t in client.dag("chain20").spec.tasks if t.id == "inc")
        task_name = f"chain20.{inc.celery_name}"
        refused = {  # each would stop, shrink, starve, slow or kill this worker's work
            "pool_shrink": {"n": 2}, "pool_grow": {"n": 3}, "autoscale": {"max": 1, "min": 0},
            "pool_restart": {}, "cancel_consumer": {"queue": queue},
            "add_consumer": {"queue": "elsewhere"},
            "rate_limit": {"task_name": task_name, "rate_limit": "1/h"},
            "time_limit": {"task_name": task_name, "hard": 0.001, "soft": 0.001},
            "disable_events": {}, "hello": {"from_node": "evil@x", "revoked": ["x"]},
            "terminate": {"signal": "SIGKILL", "task_id": "x"}, "shutdown": {},
        }
        for command, arguments in refused.items():
            answer = _ask(outsider, node, command, **arguments)
            assert "disabled" in str(answer.get("error", "")), (command, answer)
        assert own_stack.workers[-1].proc.poll() is None
        assert _ask(outsider, node, "ping") == {"ok": "pong"}
        assert _ask(outsider, node, "stats")["pool"]["processes"] == processes
        assert queue in {q["name"] for q in _ask(outsider, node, "active_queues")}
        # A rate limit of 1/h or a cancelled consumer would keep this run from finishing.
        run = client.wait(client.submit("chain20", {"start": 1}), timeout=120)
        assert run.state == RunState.SUCCESS
        assert client.result(run.id, "inc__19") == 21


def _active_ids(app: Celery, node: str) -> list[str]:
    return [t["id"] for t in _ask(app, node, "active")]


def test_an_unsigned_revoke_terminates_nothing(own_stack: LocalStack, outsider: Celery,
                                               ledger: Ledger) -> None:
    own_stack.add_worker("rev", concurrency=1)
    node = _node("rev")
    with Client(own_stack.settings) as client:
        run_id = client.submit("gateonly")
        wait_until(lambda: ledger.of(run_id, "gated"), timeout=60, what="gated to start")
        (celery_id,) = wait_until(lambda: _active_ids(outsider, node), timeout=30,
                                  what="the worker to show its task")
        wrong = Signer("not-the-key-" + "k" * 32).revoke([celery_id], True, "SIGTERM")
        for extra in ({}, {KWARG: wrong}, {KWARG: None}):
            answer = _ask(outsider, node, "revoke", task_id=[celery_id], terminate=True,
                          signal="SIGTERM", **extra)
            assert "refused" in str(answer.get("error", "")), answer
        assert _ask(outsider, node, "revoked") == []
        assert _active_ids(outsider, node) == [celery_id]  # still running
        ledger.open_gate(run_id, "go")
        run = client.wait(run_id, timeout=60)
        assert run.state == RunState.SUCCESS
        assert [a.outcome for a in run.tasks["gated"].attempts] == ["success"]


def test_flower_still_inspects_our_workers(broker_url: str, database_url: str,
                                           tmp_path: Path) -> None:
    settings = make_settings(broker_url, database_url, flower_port=free_port(),
                             flower_password="secret")
    with LocalStack(settings, workers=1, flower=True, log_dir=str(tmp_path)) as stack:
        url = f"http://127.0.0.1:{stack.settings.flower.port}/api/workers?refresh=1"
        auth = "Basic " + base64.b64encode(b"admin:secret").decode()

        def workers() -> dict[str, Any]:
            request = urllib.request.Request(url, headers={"Authorization": auth})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    return dict(json.loads(resp.read()))
            except OSError:
                return {}

        # The broker is shared with other tests' workers (their names may even match
        # this one's): this stack's worker is the one consuming its queue.
        queue = stack.settings.worker.default_queue

        def ours() -> list[Any]:
            return [v for v in workers().values()
                    if queue in {q["name"] for q in v.get("active_queues") or ()}]

        (info,) = wait_until(ours, timeout=60, what="Flower to list the worker")
        assert stack.flower_proc is not None
        environ = Path(f"/proc/{stack.flower_proc.pid}/environ").read_bytes().split(b"\0")
        given = {item.partition(b"=")[0] for item in environ}
        assert b"ORCH_BROKER_URL" in given  # what it needs, and nothing it does not:
        assert not given & {b"ORCH_DATABASE_URL", b"ORCH_SIGNING_KEY", b"ORCH_FLOWER_PASSWORD"}
        assert info["stats"]["pool"]["processes"]  # stats, registered, active_queues...
        assert "chain20.inc" in info["registered"]
