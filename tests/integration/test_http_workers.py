"""http tasks end to end (SQLite and PostgreSQL): DAGs submitted with the client, run by
a real worker (with a coordinator) against a real HTTP server on 127.0.0.1 that the test
starts. The server's URL and token reach the worker as a connection in its connections
file (ORCH_CONNECTIONS_FILE), as a deployment gives them. Attempts, results, errors and
logs are read back through the client: retries as the status says, the task timeout,
and the connection's token never stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model import records
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from tests.http_fixture_server import FixtureServer, Reply, Seen, hold
from tests.support import make_settings, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120
TOKEN = "Bearer fixture-token-0c6e41d2b9"
CONN = "fixture_api"


def _routes(s: FixtureServer) -> None:
    def orders(seen: Seen, n: int) -> Reply:
        return Reply.json({"orders": [{"id": 1}, {"id": 2}], "query": seen.query})

    s.script("/v1/orders", orders)
    s.script("/v1/echo", lambda seen, n: Reply.json({"got": seen.json}, 201))
    s.route("/v1/hello", Reply.text("hello from the fixture"))
    # Under a key no masker rule knows: only the connection's registered secrets hide it.
    s.script("/v1/headers", lambda seen, n: Reply.json(
        {"echo": seen.headers.get("authorization"),
         "user_agent": seen.headers.get("user-agent")}))
    s.script("/v1/flaky", lambda seen, n: Reply.json({"n": n}, 503 if n < 2 else 200))
    s.route("/v1/missing", Reply.text("no such thing", 404))
    s.route("/v1/slow", hold)
    s.script("/v1/denied", lambda seen, n: Reply.text(
        f"refused {seen.headers.get('authorization')} here", 403))


@pytest.fixture(scope="module")
def api() -> Iterator[FixtureServer]:
    with FixtureServer() as s:
        _routes(s)
        yield s


@pytest.fixture(scope="module")
def http_stack(api: FixtureServer, broker_url: str, database_url: str, ledger_dir: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A worker and a coordinator whose connections file names the server (under /v1,
    with a tenant in its query) and its token."""
    folder = tmp_path_factory.mktemp("http-stack")
    conns = folder / "connections.yaml"
    conns.write_text(json.dumps({"connections": {CONN: {
        "url": f"{api.origin}/v1?tenant=acme", "headers": {"Authorization": TOKEN}}}}))
    settings = make_settings(broker_url, database_url, connections_file=conns)
    with LocalStack(settings, workers=1, concurrency=2, coordinator=True,
                    log_dir=str(folder)) as s:
        yield s


@pytest.fixture
def client(http_stack: LocalStack) -> Iterator[Client]:
    with Client(http_stack.settings) as c:
        yield c


def _everything_stored(client: Client, run: records.Run) -> str:
    """The run as the client reads it (results, errors, tracebacks) and every attempt's
    log, as one text to search."""
    parts = [run.model_dump_json()]
    for task_id, t in run.tasks.items():
        parts += [client.logs(run.id, task_id, a.attempt) for a in t.attempts]
    return "\n".join(parts)


def test_requests_on_a_connection_through_a_worker(client: Client,
                                                   api: FixtureServer) -> None:
    key = uuid.uuid4().hex
    run = client.wait(client.submit("http_calls", {"key": key}), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS, run.tasks
    # The query: the run param, a repeated list, and the connection's own tenant.
    assert client.result(run.id, "fetch") == {
        "orders": [{"id": 1}, {"id": 2}],
        "query": {"tenant": ["acme"], "key": [key], "tag": ["a", "b"]}}
    # The body: what a python task made of the GET's JSON.
    assert client.result(run.id, "post") == {"got": {"order": {"id": 1}, "count": 2}}
    assert client.result(run.id, "hello") == "hello from the fixture"
    # The server got the connection's token; what the task returned is stored masked.
    seen = [s for s in api.requests("/v1/headers") if s.headers.get("authorization")]
    assert seen and all(s.headers["authorization"] == TOKEN for s in seen)
    stored = client.result(run.id, "headers")
    assert stored["user_agent"] == "orchestrator-http-task"
    assert stored["echo"] == "***"
    text = _everything_stored(client, run)
    assert TOKEN not in text and "fixture-token" not in text
    log = client.logs(run.id, "fetch")
    assert f"GET /orders on connection '{CONN}' ({api.origin}): HTTP 200 OK" in log
    assert key not in log  # the query is not in the log (httpx's own line would have it)


def test_failures_retried_as_their_status_says(client: Client, api: FixtureServer) -> None:
    key = uuid.uuid4().hex
    run = client.wait(client.submit("http_failures", {"key": key}), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    tasks = run.tasks

    def outcomes(task_id: str) -> list[tuple[AttemptOutcome, str | None]]:
        return [(a.outcome, a.error_type) for a in tasks[task_id].attempts]

    failed = AttemptOutcome.FAILED
    # 503 twice, then 200: the third attempt of retries=3 succeeds.
    assert outcomes("flaky") == [(failed, "HttpStatusUnexpected"),
                                 (failed, "HttpStatusUnexpected"),
                                 (AttemptOutcome.SUCCESS, None)]
    assert client.result(run.id, "flaky") == {"n": 2}
    assert len(api.requests("/v1/flaky", key)) == 3
    # A 404 is not retried, retries=3 notwithstanding.
    assert outcomes("missing") == [(failed, "HttpStatusUnexpected")]
    assert tasks["missing"].state == TaskState.FAILED
    assert len(api.requests("/v1/missing", key)) == 1
    message = tasks["missing"].attempts[0].error_message or ""
    assert message == (f"HTTP 404, expected 2xx from GET /missing on connection '{CONN}' "
                       f"({api.origin}): no such thing")
    # No answer: the task's timeout ends each attempt, and the retry asks again.
    assert outcomes("slow") == [(failed, "TaskTimeout"), (failed, "TaskTimeout")]
    wait_until(lambda: len(api.requests("/v1/slow", key)) == 2, timeout=30,
               what="both attempts' requests")
    # A 200 where only 201 will do fails at once.
    assert outcomes("not_created") == [(failed, "HttpStatusUnexpected")]
    assert (tasks["not_created"].attempts[0].error_message or "").startswith(
        "HTTP 200, expected 201 from POST /orders")
    # A 403 quoting the token: one attempt, and the token is not in what was stored.
    assert outcomes("denied") == [(failed, "HttpStatusUnexpected")]
    assert (tasks["denied"].attempts[0].error_message or "").endswith(": refused *** here")
    assert [s.headers["authorization"] for s in api.requests("/v1/denied", key)] == [TOKEN]
    text = _everything_stored(client, run)
    assert TOKEN not in text and "fixture-token" not in text
    assert "HTTP 503 Service Unavailable" in client.logs(run.id, "flaky", 1)
