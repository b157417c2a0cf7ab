"""Bounded, validated values on real workers, SQLite and PostgreSQL alike: every bad
param is one ParamsError that writes and sends nothing; a result a database cannot hold
fails its task once, with a clear error; the params cache stays within its bytes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from orchestrator import errors
from orchestrator.client import Client
from orchestrator.devstack.stack import LocalStack
from orchestrator.model import limits
from orchestrator.model.states import RunState
from tests.support import Ledger, make_settings, rows_at_rest

pytestmark = [pytest.mark.security, pytest.mark.integration]
WAIT_S = 60


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD = {
    "nan_nested": ({"a": [1, {"b": float("nan")}]}, "['a'][1]['b'] is not JSON-serialisable"),
    "infinity": ([float("-inf")], "[0] is not JSON-serialisable: -inf"),
    "nul_in_string": ({"s": "a\x00b"}, "['s'] contains a NUL character"),
    "nul_in_key": ({"k\x00": 1}, "has a key that contains a NUL character"),
    "too_deep": (_nested(limits.MAX_PARAMS_DEPTH + 1),
                 f"is nested more than {limits.MAX_PARAMS_DEPTH} deep"),
    "very_deep": (_nested(100_000), f"is nested more than {limits.MAX_PARAMS_DEPTH} deep"),
    "int_too_big": ([2**63], "[0] is an integer outside the 64-bit range"),
    "int_too_small": ([-(2**63) - 1], "[0] is an integer outside the 64-bit range"),
    "huge_int": (10**5000, "is an integer outside the 64-bit range"),
    "int_key": ({1: "x"}, "has a key that is not a string: 1"),
    "lone_surrogate": ("\ud800", "contains a lone surrogate"),
    "not_json": ({"s": {1, 2}}, "['s'] is not JSON-serialisable: {1, 2}"),
    "too_big": ("x" * (1024 * 1024), "more than ORCH_MAX_PARAMS_BYTES (1048576)"),
}


def _queued(stack: LocalStack) -> int:
    r = redis.Redis.from_url(stack.settings.broker.url or "")
    try:
        return int(r.llen(stack.settings.worker.default_queue))
    finally:
        r.close()


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_param_is_a_params_error_and_writes_and_sends_nothing(
        case: str, client: Client, stack: LocalStack) -> None:
    value, expected = BAD[case]
    before = rows_at_rest(client.store, stack.settings)
    with pytest.raises(errors.ParamsError) as info:
        client.submit("echo_any", {"value": value})
    assert len(info.value.problems) == 1
    assert expected in info.value.problems[0]
    assert expected in str(info.value)
    assert client.store.count_rows() == before
    assert _queued(stack) == 0


def test_every_problem_is_listed_at_once(client: Client, stack: LocalStack) -> None:
    before = rows_at_rest(client.store, stack.settings)
    value = {"a": float("nan"), "b": ["\x00", 2**64], 3: None, "d": _nested(40)}
    with pytest.raises(errors.ParamsError) as info:
        client.submit("echo_any", {"value": value, "other": 1})
    problems = info.value.problems
    assert problems[0] == "unknown param 'other'"
    assert len(problems) == 6, problems
    for part in ("['a'] is not JSON-serialisable: nan", "['b'][0] contains a NUL",
                 "['b'][1] is an integer outside", "has a key that is not a string: 3",
                 "['d']" + "[0]" * 31 + " is nested more than 32 deep"):
        assert any(part in p for p in problems), (part, problems)
    assert client.store.count_rows() == before


def test_a_bad_idempotency_key_is_refused_before_anything_is_written(
        client: Client, stack: LocalStack) -> None:
    before = rows_at_rest(client.store, stack.settings)
    for key in ("k\x00", "k" * (limits.MAX_IDEMPOTENCY_KEY_LENGTH + 1)):
        with pytest.raises(errors.InvalidArgument):
            client.submit("echo_any", {"value": 1}, idempotency_key=key)
    assert client.store.count_rows() == before
    longest = "k" * limits.MAX_IDEMPOTENCY_KEY_LENGTH + uuid.uuid4().hex
    run_id = client.submit("echo_any", {"value": 1}, idempotency_key=longest[-200:])
    assert client.wait(run_id, timeout=WAIT_S).state == RunState.SUCCESS


def test_values_at_the_limits_go_through(client: Client, ledger: Ledger) -> None:
    value = {"deepest": _nested(limits.MAX_PARAMS_DEPTH - 1), "ints": [limits.MIN_INT,
             limits.MAX_INT], "text": "é€😀 \\u0000 is not a NUL", "": None}
    run = client.wait(client.submit("echo_any", {"value": value}), timeout=WAIT_S)
    assert run.state == RunState.SUCCESS
    assert run.tasks["echo"].result == value
    assert len(ledger.of(run.id, "echo")) == 1


def test_a_nul_in_a_result_fails_the_task_once(client: Client, ledger: Ledger) -> None:
    """On PostgreSQL this ran the body 3 times, then recorded WorkerLost."""
    run = client.wait(client.submit("nul_result"), timeout=WAIT_S)
    assert run.state == RunState.FAILED
    (attempt,) = run.tasks["with_nul"].attempts
    assert (attempt.outcome, attempt.error_type) == ("failed", "InvalidResult")
    assert "NUL character" in (attempt.error_message or "")
    assert len(ledger.of(run.id, "with_nul")) == 1


def test_a_result_over_the_cap_fails_the_task(client: Client, stack: LocalStack) -> None:
    cap = stack.settings.limits.max_result_bytes
    ok = client.wait(client.submit("sized_result", {"n": cap}), timeout=WAIT_S)
    assert ok.state == RunState.SUCCESS
    assert len(ok.tasks["sized"].result) == cap - 2
    over = client.wait(client.submit("sized_result", {"n": cap + 1}), timeout=WAIT_S)
    (attempt,) = over.tasks["sized"].attempts
    assert attempt.error_type == "InvalidResult"
    assert f"{cap + 1} bytes as JSON, more than ORCH_MAX_RESULT_BYTES ({cap})" in (
        attempt.error_message or "")


_REFUSE = {
    "sqlite": ["CREATE TRIGGER refuse_marked BEFORE UPDATE OF result ON task_instances "
               "WHEN NEW.result LIKE '%refuse-me%' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_marked() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'refused by the test trigger' USING ERRCODE = '22023'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_marked BEFORE UPDATE OF result ON task_instances FOR EACH ROW "
        "WHEN (NEW.result::text LIKE '%refuse-me%') EXECUTE FUNCTION refuse_marked()"],
}
_UNREFUSE = {"sqlite": ["DROP TRIGGER refuse_marked"],
             "postgresql": ["DROP TRIGGER refuse_marked ON task_instances",
                            "DROP FUNCTION refuse_marked"]}


def test_a_result_the_database_refuses_ends_the_attempt_as_failed(
        client: Client, ledger: Ledger) -> None:
    """A real database error while recording (a trigger refusing the row) fails the
    attempt with that error; before, the attempt stayed running and was taken over."""
    engine = client.store.engine
    dialect = engine.dialect.name
    with engine.begin() as conn:
        for statement in _REFUSE[dialect]:
            conn.execute(sa.text(statement))
    try:
        run = client.wait(client.submit("echo_any", {"value": f"refuse-me {uuid.uuid4()}"}),
                          timeout=WAIT_S)
    finally:
        with engine.begin() as conn:
            for statement in _UNREFUSE[dialect]:
                conn.execute(sa.text(statement))
    assert run.state == RunState.FAILED
    (attempt,) = run.tasks["echo"].attempts
    assert attempt.outcome == "failed"
    assert attempt.error_type in ("IntegrityError", "DataError")
    message = attempt.error_message or ""
    assert message.startswith("the result could not be recorded: ")
    assert "refused by the test trigger" in message
    assert "refuse-me" not in message  # the statement and its values are left out
    assert len(ledger.of(run.id, "echo")) == 1


def test_the_params_cache_of_a_worker_stays_within_its_bytes(
        broker_url: str, database_url: str, ledger_dir: Path, tmp_path: Path) -> None:
    """Runs with 100 KB params through one pool process whose cache holds 250 KB."""
    cap = 250_000
    settings = make_settings(broker_url, database_url, params_cache_bytes=cap)
    with LocalStack(settings, workers=1, concurrency=1, log_dir=str(tmp_path)) as s, \
            Client(s.settings) as client:
        seen = []
        for i in range(6):
            value = {"i": i, "blob": "p" * 100_000}
            run = client.wait(client.submit("params_cache", {"value": value}),
                              timeout=WAIT_S)
            assert run.state == RunState.SUCCESS
            seen.append(run.tasks["cache_bytes"].result)
    assert all(r["cap"] == cap for r in seen)
    assert all(0 < r["total"] <= cap for r in seen), seen
    assert max(r["runs"] for r in seen) == 2  # 2 x 100 KB fit in 250 KB, a third does not
    assert seen[-1]["runs"] == 2
