"""Runs on real workers, a real broker and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
import redis

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.execution import local
from orchestrator.model.states import AttemptOutcome, RunState, TaskState
from orchestrator.store import Claim, Store
from tests.support import Ledger, compiled_of, rows_at_rest, wait_until

pytestmark = pytest.mark.integration
WAIT_S = 120


def test_chain_passes_each_value_on(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("chain20", {"start": 5})
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert client.result(run_id, "inc__19") == 25
    assert all(t.state == TaskState.SUCCESS and len(t.attempts) == 1
               for t in run.tasks.values())
    assert len(ledger.entries(run_id)) == 20  # each link ran exactly once


def test_wide_fan_out_and_fan_in(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("wide500")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert len(run.tasks) == 502
    assert client.result(run_id, "collect") == {
        "n": 500, "sum": sum(1 + i for i in range(500)), "first": 1, "last": 500}
    assert len(ledger.of(run_id, "collect")) == 1  # the join fired once


def test_lattice_matches_an_in_process_run(client: Client) -> None:
    run_id = client.submit("lattice10")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    expected = local.run_in_process(client.dag("lattice10").spec)
    assert {t: run.tasks[t].result for t in expected} == expected
    # every node started after every node of the layer before it finished
    for i in range(1, 10):
        prev_done = max(run.tasks[f"n{i - 1}_{j}"].finished_at for j in range(10))
        assert all(run.tasks[f"n{i}_{j}"].started_at >= prev_done for j in range(10))


def test_n_shape_d_does_not_wait_for_c(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("nshape")

    def d_done_while_c_runs() -> bool:
        tasks = client.get_run(run_id).tasks
        return tasks["d"].state == TaskState.SUCCESS and tasks["c"].state == TaskState.RUNNING

    wait_until(d_done_while_c_runs, what="d to finish while c is still running")
    ledger.open_gate(run_id, "c")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    c, d = run.tasks["c"], run.tasks["d"]
    # c could not finish before the test saw d done: d waited on b only, never on c
    assert d.finished_at < c.finished_at
    assert run.tasks["b"].finished_at <= d.started_at


def test_retry_then_success(client: Client, ledger: Ledger) -> None:
    run_id = client.submit("flaky")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    flaky = run.tasks["flaky"]
    assert [a.outcome for a in flaky.attempts] == [AttemptOutcome.FAILED, AttemptOutcome.SUCCESS]
    assert flaky.attempts[0].error_type == "RuntimeError"
    tb = flaky.attempts[0].traceback or ""
    assert "first attempt fails" in tb
    # it starts at the task's own code, not at the worker frames that called it
    assert tb.startswith("Traceback") and "runtime.py" not in tb and "operators.py" not in tb
    assert client.result(run_id, "flaky") == 2
    assert client.result(run_id, "inc") == 3
    assert [e["attempt"] for e in ledger.of(run_id, "flaky")] == [1, 2]


def test_exhausted_retries_fail_downstream_but_not_independent_branches(
        client: Client, ledger: Ledger) -> None:
    run_id = client.submit("failing")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    states = {t: ti.state for t, ti in run.tasks.items()}
    assert states == {"root": "success", "boom": "failed", "down": "upstream_failed",
                      "down2": "upstream_failed", "side": "success", "side2": "success"}
    assert len(run.tasks["boom"].attempts) == 2
    assert all(a.error_type == "ValueError" for a in run.tasks["boom"].attempts)
    assert len(ledger.of(run_id, "boom")) == 2
    with pytest.raises(errors.TaskNotFinished):
        client.result(run_id, "down")


def test_timeout_fails_the_task(client: Client) -> None:
    run_id = client.submit("timeout")
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    (attempt,) = run.tasks["sleepy"].attempts
    assert attempt.error_type == "TaskTimeout"
    assert attempt.finished_at is not None


def test_a_timeout_that_fires_after_the_body_failed_still_ends_the_attempt(
        client: Client) -> None:
    """The soft limit lands while the worker reads the body's exception (its message is
    slow): the attempt still ends, as a timeout, with no coordinator to rescue it."""
    run = client.wait(client.submit("late_failure"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    (attempt,) = run.tasks["fails_at_its_deadline"].attempts
    assert attempt.error_type == "TaskTimeout"


def test_yaml_dag_with_shell_tasks(client: Client) -> None:
    run_id = client.submit("yaml_mixed", {"word": "hey"})
    run = client.wait(run_id, timeout=WAIT_S)
    assert run.state == RunState.FAILED
    assert client.result(run_id, "shout") == "hey from shout attempt 1"
    fail = run.tasks["fail_shell"]
    assert fail.state == TaskState.FAILED
    assert fail.attempts[0].error_type == "ShellCommandFailed"
    assert "status 3" in (fail.attempts[0].error_message or "")
    assert "nope" in (fail.attempts[0].error_message or "")
    assert run.tasks["after_fail"].state == TaskState.UPSTREAM_FAILED


def test_idempotency_key_returns_the_same_run(client: Client) -> None:
    before = client.store.count_rows()
    first = client.submit("chain20", idempotency_key="nightly-2026-11-24")
    again = client.submit("chain20", idempotency_key="nightly-2026-11-24")
    assert first == again
    assert client.store.count_rows()["runs"] == before["runs"] + 1
    assert client.wait(first, timeout=WAIT_S).state == RunState.SUCCESS


def test_runs_are_listed_newest_first(client: Client) -> None:
    a = client.submit("flaky")
    b = client.submit("chain20")
    client.wait(a, timeout=WAIT_S)
    client.wait(b, timeout=WAIT_S)
    ids = [r.id for r in client.runs(limit=500)]
    assert ids.index(b) < ids.index(a)
    assert all(r.dag_id == "flaky" for r in client.runs(dag_id="flaky"))


BAD_SUBMISSIONS = [
    ("nope", {}, errors.UnknownDag, "unknown DAG 'nope'"),
    ("cyclic", {}, errors.UnknownDag, "tdag_broken.yaml"),
    ("typed", {}, errors.ParamsError, "missing required param 'name'"),
    ("typed", {"name": "x", "times": "2"}, errors.ParamsError, "'times' must be integer"),
    ("typed", {"name": "x", "times": 1.5}, errors.ParamsError, "'times' must be integer"),
    ("typed", {"name": 3}, errors.ParamsError, "'name' must be string"),
    ("typed", {"name": "x", "oops": 1}, errors.ParamsError, "unknown param 'oops'"),
    ("typed", {"name": "x", "tags": {1, 2}}, errors.ParamsError, "not JSON-serialisable"),
]


@pytest.mark.parametrize(("dag_id", "params", "exc", "message"), BAD_SUBMISSIONS)
def test_bad_submissions_write_and_send_nothing(
        client: Client, broker: redis.Redis, dag_id: str, params: dict[str, object],
        exc: type[Exception], message: str) -> None:
    queue = f"unconsumed-{dag_id}"
    with Client(client.settings.with_env(ORCH_DEFAULT_QUEUE=queue)) as c:
        before = rows_at_rest(c.store, c.settings)
        with pytest.raises(exc, match=message.replace("(", r"\(")):
            c.submit(dag_id, params)
        assert c.store.count_rows() == before
    assert broker.llen(queue) == 0
    assert broker.exists(queue) == 0


def test_store_rejects_late_results_from_a_superseded_attempt(client: Client) -> None:
    """The attempt number fences writes: a success for attempt 1 after attempt 2 took over
    changes nothing."""
    store: Store = client.store
    dag = compiled_of({"a": [], "b": ["a"]}, retries=2)
    run = store.create_run(dag, run_id=uuid.uuid4().hex, params={})
    claim = store.claim(run.run_id, "a", 1, worker="w1", pid=1, lease_seconds=60,
                        data_from=[], max_lost=3)
    assert isinstance(claim, Claim)
    p = dag.plan
    retried = store.fail(run.run_id, "a", 1, error_type="E", message="m", traceback=None,
                         retry_in=0.0, p=p)
    assert retried.retry == ("a", 2, 0.0)
    second = store.claim(run.run_id, "a", 2, worker="w2", pid=2, lease_seconds=60,
                         data_from=[], max_lost=3)
    assert isinstance(second, Claim) and second.token and second.token != claim.token
    late = store.succeed(run.run_id, "a", 1, "late", p)
    assert not late.applied
    # the token fences within an attempt: only the claim that holds it writes for it
    assert not store.renew_lease(run.run_id, "a", 2, "not-the-token", 60)
    assert not store.succeed(run.run_id, "a", 2, "forged", p, token="not-the-token").applied
    assert store.renew_lease(run.run_id, "a", 2, second.token, 60)
    ok = store.succeed(run.run_id, "a", 2, "fresh", p, token=second.token)
    assert ok.applied and ok.queued == [("b", 1)]
    dup = store.succeed(run.run_id, "a", 2, "again", p)
    assert not dup.applied
    assert store.result(run.run_id, "a") == (TaskState.SUCCESS, "fresh")


def test_a_result_that_is_not_json_fails_the_task(client: Client) -> None:
    run = client.wait(client.submit("badresult"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    (attempt,) = run.tasks["not_json"].attempts
    assert attempt.error_type == "InvalidResult"
    assert "not JSON serializable" in (attempt.error_message or "")
