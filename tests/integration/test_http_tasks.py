"""http tasks run as a worker runs their body (``operators.call``), against a real HTTP
server on 127.0.0.1 that the test starts: the request (URL joined from a connection,
headers, query, body), the result's shapes, which failures are retried, the timeout,
redirects, the result cap, and that no error quotes a secret.
The same through real workers and a coordinator: test_http_workers.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import errors
from orchestrator.authoring import yaml_dags
from orchestrator.execution import connections, local, operators
from orchestrator.execution.task_context import TaskContext
from orchestrator.kinds import http
from orchestrator.model import spec
from tests.http_fixture_server import FixtureServer, Reply, endless, hold
from tests.support import free_port, wait_until

pytestmark = pytest.mark.integration
TOKEN = "Bearer conn-token-5f3a9c1e"
SECRET_HEADER = "task-secret-77d2b0"


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as s:
        yield s


@pytest.fixture
def conn_file(server: FixtureServer, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    """The connections file this process reads: ``api`` is the server under /v1 with a
    token and a header the task may override; ``notweb`` is a database."""
    path = tmp_path / "connections.yaml"
    path.write_text(json.dumps({"connections": {
        "api": {"url": f"{server.origin}/v1?tenant=acme",
                "headers": {"Authorization": TOKEN, "X-Env": "prod"}},
        "notweb": "sqlite:///nothing.db"}}))
    monkeypatch.setattr(connections, "_file_override", path)
    return path


def task_of(body: dict[str, Any], **options: Any) -> spec.TaskSpec:
    """One http task as YAML writes it (JSON is YAML), beside a task ``make`` it may
    take a value from."""
    text = json.dumps({"id": "h", "tasks": [{"id": "make", "python": "builtins:dict"},
                                            {"id": "t", "http": body, **options}]})
    return yaml_dags.load_text(text).task("t")


def call(task: spec.TaskSpec, params: dict[str, Any] | None = None,
         upstream: dict[str, Any] | None = None, cap: int | None = None) -> Any:
    ctx = TaskContext("h", "run1", task.id, 1, params or {}, result_cap=cap)
    return operators.call(task, params or {}, upstream or {}, ctx)


def failure(task: spec.TaskSpec, **kwargs: Any) -> BaseException:
    with pytest.raises(errors.TaskFailure) as info:
        call(task, **kwargs)
    return info.value


def retryable(exc: BaseException) -> bool:
    return getattr(exc, "retryable", True) is not False


def test_get_json_from_a_connection_with_its_headers(server: FixtureServer,
                                                     conn_file: Path) -> None:
    server.route("/v1/orders", Reply.json({"orders": [1, 2]}))
    task = task_of({"conn": "api", "path": "/orders", "headers": {"X-Env": "test"},
                    "params": {"page": 2, "tag": ["a", "b"], "since": None, "all": True}})
    assert call(task) == {"orders": [1, 2]}
    (seen,) = server.requests("/v1/orders")
    assert seen.method == "GET" and seen.headers["authorization"] == TOKEN
    assert seen.headers["x-env"] == "test"  # the task's own header wins over the connection's
    assert seen.headers["user-agent"] == http.USER_AGENT
    # The connection's query is kept; a list repeats, None is left out.
    assert seen.query == {"tenant": ["acme"], "page": ["2"], "tag": ["a", "b"],
                          "all": ["true"]}


def test_post_sends_the_json_body_bound_from_upstream(server: FixtureServer,
                                                      conn_file: Path) -> None:
    server.script("/v1/echo", lambda seen, n: Reply.json({"got": seen.json}, 201))
    yaml = task_of({"method": "post", "conn": "api", "path": "echo",
                    "json": {"task": "make"}, "expect": [201]})
    order = {"id": 7, "items": ["a", "é"]}
    assert call(yaml, upstream={"make": order}) == {"got": order}
    (seen,) = server.requests("/v1/echo")
    assert seen.headers["content-type"] == "application/json"


def test_text_results_follow_the_charset(server: FixtureServer) -> None:
    server.route("/latin", Reply.text("café", content_type="text/plain; charset=latin-1"))
    server.route("/plain", Reply(200, b"ok \xff", "text/plain"))
    assert call(task_of({"url": f"{server.origin}/latin"})) == "café"
    assert call(task_of({"url": f"{server.origin}/plain"})) == "ok \ufffd"


def test_json_media_types_and_bodies_that_are_not(server: FixtureServer) -> None:
    server.route("/problem", Reply.json({"title": "fine"}, 200, "application/problem+json"))
    server.route("/liar", Reply(200, b"<html>", "application/json"))
    server.route("/binary", Reply(200, b"\x89PNG\x00\x01", "image/png"))
    assert call(task_of({"url": f"{server.origin}/problem"})) == {"title": "fine"}
    liar = failure(task_of({"url": f"{server.origin}/liar"}))
    assert isinstance(liar, errors.InvalidResult)
    assert "says application/json but is not JSON" in str(liar)
    binary = failure(task_of({"url": f"{server.origin}/binary"}))
    assert "is binary" in str(binary) and not retryable(binary)


def test_no_body_is_none(server: FixtureServer) -> None:
    server.route("/gone", Reply(204))
    server.route("/head", Reply.json({"ignored": True}))
    assert call(task_of({"method": "DELETE", "url": f"{server.origin}/gone"})) is None
    assert call(task_of({"method": "HEAD", "url": f"{server.origin}/head"})) is None


def test_an_unexpected_success_fails_without_retry(server: FixtureServer) -> None:
    server.route("/made", Reply.json({"ok": True}, 200))
    exc = failure(task_of({"method": "POST", "url": f"{server.origin}/made",
                           "json": {}, "expect": [201]}))
    assert isinstance(exc, errors.HttpStatusUnexpected) and exc.status == 200
    assert str(exc).startswith(f"HTTP 200, expected 201 from POST {server.origin}/made: ")
    assert not retryable(exc)


@pytest.mark.parametrize(("status", "again"), [(404, False), (401, False), (400, False),
                                               (429, True), (408, True), (503, True),
                                               (500, True)])
def test_which_statuses_are_retried(server: FixtureServer, conn_file: Path, status: int,
                                    again: bool) -> None:
    # The server quotes back what it was sent, secrets included, in a long body.
    server.script("/v1/x", lambda seen, n: Reply.text(
        f"denied {seen.headers['authorization']} {seen.headers['x-secret']} " + "z" * 900,
        status))
    task = task_of({"conn": "api", "path": "/x?key=v",
                    "headers": {"X-Secret": {"secret": {"env": "HTTP_TEST_SECRET"}}}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HTTP_TEST_SECRET", SECRET_HEADER)
        exc = failure(task)
    assert isinstance(exc, errors.HttpStatusUnexpected) and exc.status == status
    assert retryable(exc) is again
    text = str(exc)
    assert text.startswith(f"HTTP {status}, expected 2xx from GET /x?key=v on connection "
                           f"'api' ({server.origin}): denied *** *** zzz")
    assert TOKEN not in text and SECRET_HEADER not in text and "conn-token" not in text
    assert len(text.partition(": denied")[2]) <= 500 + len(": denied")


def test_no_answer_is_a_retryable_request_failure() -> None:
    port = free_port()  # nothing listens there
    exc = failure(task_of({"url": f"http://127.0.0.1:{port}/x?token=abc"}))
    assert isinstance(exc, errors.HttpRequestFailed) and retryable(exc)
    assert str(exc).startswith(f"GET http://127.0.0.1:{port}/x: ConnectError")
    assert "token=abc" not in str(exc)


def test_the_task_timeout_bounds_a_request_never_answered(
        server: FixtureServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Called as the worker calls it, without the worker's time limit: the request's own
    deadline ends it (the grace after the timeout made short for the test)."""
    server.route("/slow", hold)
    monkeypatch.setattr(http, "TIMEOUT_GRACE_S", 0.1)
    task = task_of({"url": f"{server.origin}/slow"}, timeout=0.5)
    started = time.monotonic()
    exc = failure(task)
    assert isinstance(exc, errors.TaskTimeout) and retryable(exc)
    assert "within the task's timeout of 0.5 s" in str(exc)
    assert time.monotonic() - started < 30  # bounded by the timeout, not the server
    assert len(server.requests("/slow")) == 1


def test_without_a_timeout_the_default_bounds_it(server: FixtureServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server.route("/slow", hold)
    monkeypatch.setattr(http, "DEFAULT_TIMEOUT_S", 0.5)
    exc = failure(task_of({"url": f"{server.origin}/slow"}))
    assert isinstance(exc, errors.HttpRequestFailed) and retryable(exc)
    assert "no whole answer within 0.5 s" in str(exc)


def test_a_body_past_the_cap_is_not_read_on(server: FixtureServer) -> None:
    server.route("/endless", endless())
    exc = failure(task_of({"url": f"{server.origin}/endless"}), cap=100_000)
    assert isinstance(exc, errors.InvalidResult) and not retryable(exc)
    assert "the response is more than 100000 bytes" in str(exc)
    assert "stopped reading there" in str(exc)
    # The client hung up: the server's writer ends, having sent little more than the
    # cap (what the sockets' buffers held), not an endless stream.
    wait_until(lambda: server.streams_ended == 1, timeout=30, what="the stream to be cut")
    assert server.streamed < 64 * 1024 * 1024


def test_a_declared_length_past_the_cap_fails_before_reading(server: FixtureServer) -> None:
    server.route("/huge", endless(declared=10**12))
    exc = failure(task_of({"url": f"{server.origin}/huge"}), cap=1000)
    assert "it says 1000000000000 bytes; none were read" in str(exc)


def test_redirects_keep_credentials_on_their_origin(server: FixtureServer,
                                                    conn_file: Path) -> None:
    with FixtureServer() as other:
        server.route("/v1/old", Reply.redirect("/v1/new", 301))
        server.route("/v1/new", Reply.redirect(f"{other.origin}/elsewhere", 307))
        other.route("/elsewhere", Reply.json({"there": True}))
        task = task_of({"conn": "api", "path": "/old", "headers": {
            "X-Secret": {"secret": {"env": "HTTP_TEST_SECRET"}}, "X-Plain": "kept"}})
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HTTP_TEST_SECRET", SECRET_HEADER)
            assert call(task) == {"there": True}
        (same,) = server.requests("/v1/new")
        assert same.headers["authorization"] == TOKEN
        assert same.headers["x-secret"] == SECRET_HEADER
        (moved,) = other.requests("/elsewhere")
        for name in ("authorization", "x-env", "x-secret"):
            assert name not in moved.headers
        assert moved.headers["x-plain"] == "kept"


def test_an_expected_redirect_is_the_answer_and_loops_are_cut(server: FixtureServer) -> None:
    server.route("/here", Reply.redirect("/there", 302))
    server.route("/loop", Reply.redirect("/loop", 302))
    assert call(task_of({"url": f"{server.origin}/here", "expect": [302]})) is None
    exc = failure(task_of({"url": f"{server.origin}/loop"}))
    assert f"more than {http.MAX_REDIRECTS} redirects" in str(exc) and not retryable(exc)
    assert len(server.requests("/loop")) == http.MAX_REDIRECTS + 1
    assert server.requests("/there") == []


def test_header_values_that_would_inject_are_refused(server: FixtureServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_TEST_SECRET", SECRET_HEADER + "\r\nX-Injected: 1")
    task = task_of({"url": f"{server.origin}/x",
                    "headers": {"X-Secret": {"secret": {"env": "HTTP_TEST_SECRET"}}}})
    exc = failure(task)
    assert isinstance(exc, errors.HttpRequestFailed) and not retryable(exc)
    assert "header 'X-Secret' from the task has a CR, LF" in str(exc)
    assert SECRET_HEADER not in str(exc)
    assert server.requests() == []


def test_a_connection_that_is_not_http_is_refused(conn_file: Path) -> None:
    exc = failure(task_of({"conn": "notweb", "path": "/x"}))
    assert isinstance(exc, errors.ConnectionUnavailable) and not retryable(exc)
    assert "is a sqlite URL" in str(exc)


def test_dag_test_applies_the_same_policy(server: FixtureServer) -> None:
    """Dag.test: 503 twice then 200 on the third attempt, a 404 once, and a server that
    never answers timed out at the task's timeout, then retried."""
    server.script("/flaky", lambda seen, n: Reply.json({"n": n}, 503 if n < 2 else 200))
    server.route("/missing", Reply.text("no", 404))
    server.route("/slow", hold)
    text = json.dumps({"id": "h", "tasks": [
        {"id": "flaky", "http": {"url": f"{server.origin}/flaky"}, "retries": 3},
        {"id": "missing", "http": {"url": f"{server.origin}/missing"}, "retries": 3},
        {"id": "slow", "http": {"url": f"{server.origin}/slow"}, "retries": 1,
         "timeout": 0.5}]})
    report = local.run_in_process(yaml_dags.load_text(text), raise_on_failure=False)
    assert report["flaky"] == {"n": 2}
    assert [a.outcome for a in report.attempts["flaky"]] == ["failed", "failed", "success"]
    assert [a.error_type for a in report.attempts["missing"]] == ["HttpStatusUnexpected"]
    assert [a.error_type for a in report.attempts["slow"]] == ["TaskTimeout", "TaskTimeout"]
    wait_until(lambda: len(server.requests("/slow")) == 2, timeout=30,
               what="both attempts' requests")
