"""The REST API's runs through the app on the conftest stack: submit, read, idempotency,
params refused with nothing written and nothing sent, cancel and rerun."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from orchestrator.client import Client
from orchestrator.model.states import RunState
from tests.api_support import API, api, problem, token
from tests.support import Ledger, rows_at_rest, wait_until

pytestmark = pytest.mark.integration


def test_a_submitted_run_is_listed_and_shows_every_attempt(client: Client) -> None:
    with api(client, token(client, "operator")) as http:
        r = http.post(f"{API}/dags/typed/runs", json={"params": {"name": "ada", "times": 2}})
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        assert r.json()["created"] is True
        client.wait(run_id, timeout=60)
        listed = http.get(f"{API}/runs", params={"dag_id": "typed", "limit": 500}).json()
        assert run_id in [x["id"] for x in listed["runs"]]
        shown = http.get(f"{API}/runs/{run_id}")
    assert shown.status_code == 200, shown.text
    run = shown.json()
    assert run["state"] == "success" and run["params"] == {"name": "ada", "times": 2,
                                                           "tags": None}
    assert run["dag_version"] == client.dag("typed").version
    (greet,) = run["tasks"]
    assert greet["task_id"] == "greet" and greet["state"] == "success"
    assert greet["worker"] and greet["started_at"] and greet["finished_at"]
    (attempt,) = greet["attempts"]
    stored = client.get_run(run_id).tasks["greet"].attempts[0]
    assert attempt["celery_id"] and attempt["celery_id"] == stored.celery_id
    assert attempt["outcome"] == "success" and attempt["dag_version"] == run["dag_version"]
    assert attempt["duration_s"] is not None and attempt["duration_s"] >= 0


def test_an_idempotency_key_gives_the_same_run(client: Client) -> None:
    key = f"key-{uuid.uuid4().hex}"
    with api(client, token(client, "operator")) as http:
        first = http.post(f"{API}/dags/api_quick/runs", json={"params": {"n": 4}},
                          headers={"Idempotency-Key": key})
        again = http.post(f"{API}/dags/api_quick/runs", json={"params": {"n": 4}},
                          headers={"Idempotency-Key": key})
        other = http.post(f"{API}/dags/api_quick/runs", json={"params": {"n": 5}},
                          headers={"Idempotency-Key": key})
    assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
    assert again.json() == {"run_id": first.json()["run_id"], "created": False}
    assert "was used by run" in problem(other, 409)["detail"]  # same key, other params
    keyed = [r for r in client.runs(dag_id="api_quick", limit=500)
             if r.idempotency_key == key]
    assert [r.id for r in keyed] == [first.json()["run_id"]]


@pytest.fixture
def unconsumed(client: Client) -> Iterator[Client]:
    """A client whose default queue no worker consumes: whatever it sends stays there."""
    queue = f"api-unconsumed-{uuid.uuid4().hex[:8]}"
    with Client(client.settings.with_env(ORCH_DEFAULT_QUEUE=queue)) as c:
        yield c


def _queued(c: Client) -> int:
    r = redis.Redis.from_url(c.settings.broker.url or "")
    try:
        return int(r.llen(c.settings.worker.default_queue))
    finally:
        r.close()


def test_invalid_params_list_every_problem_and_write_and_send_nothing(
        unconsumed: Client) -> None:
    c = unconsumed
    bad_bodies = [
        {"params": {"times": "twice", "bogus": 1, "zzz": [1]}},  # 4 problems at once
        {"params": {"name": "ada", "tags": ["a" * (c.settings.limits.max_params_bytes)]}},
        {"params": {"name": "ada", "times": 2**64}},
        {"params": "not an object"},
        {"params": {"name": "ada"}, "extra": True},
    ]
    before = rows_at_rest(c.store, c.settings)
    with api(c, token(c, "operator")) as http:
        first = problem(http.post(f"{API}/dags/typed/runs", json=bad_bodies[0]), 422)
        assert len(first["problems"]) == 4, first
        for needle in ("missing required param 'name'", "param 'times' must be integer",
                       "unknown param 'zzz'", "unknown param 'bogus'"):
            assert any(needle in p for p in first["problems"]), (needle, first)
        assert "ORCH_MAX_PARAMS_BYTES" in problem(
            http.post(f"{API}/dags/typed/runs", json=bad_bodies[1]), 422)["detail"]
        assert "64-bit" in problem(
            http.post(f"{API}/dags/typed/runs", json=bad_bodies[2]), 422)["detail"]
        for body in bad_bodies[3:]:
            assert problem(http.post(f"{API}/dags/typed/runs", json=body), 422)["problems"]
        huge = b'{"params": {"name": "' + b"x" * (5 * c.settings.limits.max_params_bytes) + b'"}}'
        problem(http.post(f"{API}/dags/typed/runs", content=huge,
                          headers={"content-type": "application/json"}), 413)
        hostile = [b"{not json", b'{"params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                   b'{"params": {"name": ' + b"9" * 5000 + b"}}",
                   b'{"params": {"name": "ada", "times": 1e999}}', b"\xff\xfe{}",
                   b'{"params": {"name": "ada", "times": NaN}}', b"[]", b"null"]
        for body in hostile:
            problem(http.post(f"{API}/dags/typed/runs", content=body,
                              headers={"content-type": "application/json"}), 422)
        assert c.store.count_rows() == before
        assert _queued(c) == 0
        # the same checks see a write and a send when there is one
        ok = http.post(f"{API}/dags/typed/runs", json={"params": {"name": "ada"}})
        assert ok.status_code == 201, ok.text
        assert _queued(c) == 1 and c.store.count_rows()["runs"] == before["runs"] + 1
        assert http.post(f"{API}/runs/{ok.json()['run_id']}/cancel").status_code == 200


def test_cancel_and_rerun_through_the_api(client: Client, ledger: Ledger) -> None:
    with api(client, token(client, "operator")) as http:
        run_id = http.post(f"{API}/dags/killme/runs", json={}).json()["run_id"]
        wait_until(lambda: ledger.of(run_id, "gated"), what="'gated' to start")
        problem(http.post(f"{API}/runs/{run_id}/rerun"), 409)  # still running
        r = http.post(f"{API}/runs/{run_id}/cancel")
        assert r.status_code == 200, r.text
        assert r.json() == {"run_id": run_id, "state": "cancelled"}
        assert "already cancelled" in problem(http.post(f"{API}/runs/{run_id}/cancel"),
                                              409)["detail"]
        ledger.open_gate(run_id, "go")
        r = http.post(f"{API}/runs/{run_id}/rerun")
        assert r.status_code == 200, r.text
        assert r.json() == {"run_id": run_id, "reset": ["gated", "last"]}
        assert client.wait(run_id, timeout=60).state == RunState.SUCCESS
        r = http.post(f"{API}/runs/{run_id}/rerun", json={"from_task": "last"})
        assert r.status_code == 200 and r.json()["reset"] == ["last"], r.text
        assert client.wait(run_id, timeout=60).state == RunState.SUCCESS
        assert "no task 'nope'" in problem(http.post(f"{API}/runs/{run_id}/rerun",
                                                     json={"from_task": "nope"}),
                                           404)["detail"]
        problem(http.post(f"{API}/runs/{'0' * 32}/cancel"), 404)
        problem(http.post(f"{API}/runs/not-a-run/cancel"), 422)
        shown = http.get(f"{API}/runs/{run_id}").json()
    gated = next(t for t in shown["tasks"] if t["task_id"] == "gated")
    assert [a["outcome"] for a in gated["attempts"]] == ["failed", "success"]
    assert gated["attempts"][0]["error_type"] == "Cancelled"
    assert [t["task_id"] for t in shown["tasks"]] == ["first", "gated", "last"]


def test_errors_and_tracebacks_are_masked_in_the_answer(client: Client) -> None:
    key = client.settings.security.signing_key or ""
    assert len(key) >= 32
    run_id = client.submit("api_leaky")
    assert client.wait(run_id, timeout=60).state == RunState.FAILED
    stored = client.get_run(run_id).tasks["leaky"]
    # the worker masked it before storing (issue 11); the API masks again what it shows
    assert "cannot sign with ***" in (stored.attempts[0].traceback or "")
    assert key not in (stored.attempts[0].traceback or "") + (stored.error or "")
    with api(client, token(client, "viewer")) as http:
        r = http.get(f"{API}/runs/{run_id}")
    assert r.status_code == 200 and key not in r.text, r.text
    (task,) = r.json()["tasks"]
    assert task["attempts"][0]["error_message"] == "cannot sign with ***"
    assert "cannot sign with ***" in task["attempts"][0]["traceback"]
